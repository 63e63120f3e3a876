--[[
  Activates a PENDING key early (every live watcher holds it): compare-and-set
  on the epoch, replace the key's record by one whose activatesAt is now,
  bump the epoch, publish.

  KEYS[1] params hash    KEYS[2] state hash    KEYS[3] keys hash
  ARGV[1] expected epoch
  ARGV[2] key name (hex)          ARGV[3] the key's record now (JSON, unchanged)
  ARGV[4] the promoted record (JSON)
  ARGV[5] changes channel         ARGV[6] ring name

  Returns {epoch} on success, or
    {-1}         ring does not exist
    {-2, epoch}  the ring is at another epoch
    {-4}         the key is gone or its record changed
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local epoch = tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')
if epoch ~= tonumber(ARGV[1]) then return {-2, epoch} end
if redis.call('HGET', KEYS[3], ARGV[2]) ~= ARGV[3] then return {-4} end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
epoch = redis.call('HINCRBY', KEYS[2], 'epoch', 1)
redis.call('PUBLISH', ARGV[5], ARGV[6] .. ' ' .. epoch)
return {epoch}
