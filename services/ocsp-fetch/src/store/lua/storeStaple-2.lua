-- Records a successful fetch; replaces the staple only when the new response's
-- thisUpdate is strictly newer than the stored one (compare-and-swap), so a
-- replayed or reordered older response never wins.
-- KEYS[1]  the certificate's hash
-- KEYS[2]  the responder's failure hash (cleared: the responder works)
-- ARGV[1]  the changes channel
-- ARGV[2]  the certificate id
-- ARGV[3]  the new staple's thisUpdateMs
-- ARGV[4]  lastAttemptAtMs
-- ARGV[5]  nextAttemptAtMs
-- ARGV[6..] field, value ... of the staple
-- returns  1 stored, -1 not registered, -2 not newer (staple kept, fetch state recorded)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
redis.call('DEL', KEYS[2])
local hadFailures = tonumber(redis.call('HGET', KEYS[1], 'consecutiveFailures') or '0') > 0
redis.call('HSET', KEYS[1], 'lastAttemptAtMs', ARGV[4], 'nextAttemptAtMs', ARGV[5],
  'consecutiveFailures', '0', 'lastError', '')
local current = tonumber(redis.call('HGET', KEYS[1], 'thisUpdateMs') or '-1')
if current >= tonumber(ARGV[3]) then
  if hadFailures then
    redis.call('PUBLISH', ARGV[1], 'updated:' .. ARGV[2])
  end
  return -2
end
local fields = {}
for i = 6, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PUBLISH', ARGV[1], 'updated:' .. ARGV[2])
return 1
