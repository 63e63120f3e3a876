--[[
  Writes a ring back from a replica's last key set after Redis lost it (a
  restart without persistence), only if the ring is still absent: the first
  replica to notice restores it, the others find it there. The epoch continues
  from the restored one, so nodes never see it go backwards.
  With ARGV[8] (an epoch), the ring is instead overwritten only while it is
  present at exactly that epoch: Redis went back to an older state (failover,
  partial loss) and the replica writes the merged state over it
  (compare-and-set, so only one replica's write lands).

  KEYS[1] params hash    KEYS[2] state hash    KEYS[3] keys hash    KEYS[4] revoked zset
  ARGV[1] epoch to restore at (last known + 1)   ARGV[2] lastRotatedAtMs
  ARGV[3] changes channel                        ARGV[4] ring name
  ARGV[5] JSON object: parameter field → value
  ARGV[6] JSON object: key name (hex) → key record (JSON)
  ARGV[7] JSON array of [revoked name (hex), remember-until ms]
  ARGV[8] '' (restore only if absent) or the epoch the ring must be at

  Returns {epoch, 1} when written, {current epoch, 0} when left alone.
]]
local exists = redis.call('EXISTS', KEYS[1]) == 1
local current = tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')
if ARGV[8] == nil or ARGV[8] == '' then
  if exists then return {current, 0} end
elseif not exists or current ~= tonumber(ARGV[8]) then
  return {current, 0}
end
for field, value in pairs(cjson.decode(ARGV[5])) do redis.call('HSET', KEYS[1], field, value) end
redis.call('DEL', KEYS[3], KEYS[4])
for name, record in pairs(cjson.decode(ARGV[6])) do redis.call('HSET', KEYS[3], name, record) end
for _, entry in ipairs(cjson.decode(ARGV[7])) do redis.call('ZADD', KEYS[4], entry[2], entry[1]) end
redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'lastRotatedAtMs', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. ARGV[1])
return {tonumber(ARGV[1]), 1}
