--[[
  Publishes a new key on a ring: compare-and-set on the epoch, add the key,
  drop expired keys, forget expired revocations, bump the epoch, publish.

  KEYS[1] params hash    KEYS[2] state hash    KEYS[3] keys hash    KEYS[4] revoked zset
  ARGV[1] expected epoch (the epoch the plan was made from)
  ARGV[2] now (ms)
  ARGV[3] new key name (hex)      ARGV[4] new key record (JSON)
  ARGV[5] changes channel         ARGV[6] ring name
  ARGV[7..] names (hex) of expired keys to drop

  Returns {epoch} on success, or
    {-1}         ring does not exist
    {-2, epoch}  the ring is at another epoch
    {-3}         the new name is already taken
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local epoch = tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')
if epoch ~= tonumber(ARGV[1]) then return {-2, epoch} end
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then return {-3} end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
for i = 7, #ARGV do redis.call('HDEL', KEYS[3], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[2])
epoch = redis.call('HINCRBY', KEYS[2], 'epoch', 1)
redis.call('HSET', KEYS[2], 'lastRotatedAtMs', ARGV[2])
redis.call('PUBLISH', ARGV[5], ARGV[6] .. ' ' .. epoch)
return {epoch}
