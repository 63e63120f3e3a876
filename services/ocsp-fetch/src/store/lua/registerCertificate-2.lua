-- Registers a certificate unless it is registered already (then nothing changes).
-- KEYS[1]  the certificate's hash
-- KEYS[2]  the set of registered ids
-- ARGV[1]  the changes channel
-- ARGV[2]  the certificate id
-- ARGV[3..] field, value, field, value ... of the new record
-- returns  1 created, 0 already registered
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local fields = {}
for i = 3, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[1], 'updated:' .. ARGV[2])
return 1
