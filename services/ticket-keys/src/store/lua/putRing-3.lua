--[[
  Creates a ring with its first key (ACTIVE at once), or updates the
  parameters of an existing one; bumps the epoch and publishes either way.

  KEYS[1] params hash    KEYS[2] state hash    KEYS[3] keys hash
  ARGV[1] now (ms)
  ARGV[2] '1': only create (an existing ring is left as it is)
  ARGV[3] first key name (hex)    ARGV[4] first key record (JSON)
  ARGV[5] changes channel         ARGV[6] ring name
  ARGV[7..] parameter field, value, field, value, ...

  Returns {epoch, 1} when created, {epoch, 0} when updated (or left alone).
]]
local exists = redis.call('EXISTS', KEYS[1]) == 1
if exists and ARGV[2] == '1' then
  return {tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0'), 0}
end
for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if not exists then
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
  redis.call('HSET', KEYS[2], 'lastRotatedAtMs', ARGV[1])
end
local epoch = redis.call('HINCRBY', KEYS[2], 'epoch', 1)
redis.call('PUBLISH', ARGV[5], ARGV[6] .. ' ' .. epoch)
if exists then return {epoch, 0} end
return {epoch, 1}
