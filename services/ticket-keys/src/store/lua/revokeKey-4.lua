--[[
  Revokes a key: compare-and-set on the epoch, remove the key, remember its
  name until it would have expired, add a replacement when it was the ACTIVE
  key, bump the epoch, publish.

  KEYS[1] params hash    KEYS[2] state hash    KEYS[3] keys hash    KEYS[4] revoked zset
  ARGV[1] expected epoch          ARGV[2] now (ms)
  ARGV[3] revoked key name (hex)  ARGV[4] remember the name until (ms)
  ARGV[5] replacement name (hex) or ''   ARGV[6] replacement record (JSON) or ''
  ARGV[7] changes channel         ARGV[8] ring name

  Returns {epoch} on success, or
    {-1}         ring does not exist
    {-2, epoch}  the ring is at another epoch
    {-3}         the replacement name is already taken
    {-4}         the ring has no such key
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local epoch = tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')
if epoch ~= tonumber(ARGV[1]) then return {-2, epoch} end
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 0 then return {-4} end
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[5]) == 1 then return {-3} end
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
  redis.call('HSET', KEYS[2], 'lastRotatedAtMs', ARGV[2])
end
epoch = redis.call('HINCRBY', KEYS[2], 'epoch', 1)
redis.call('PUBLISH', ARGV[7], ARGV[8] .. ' ' .. epoch)
return {epoch}
