-- Forgets a certificate and its staple.
-- KEYS[1]  the certificate's hash
-- KEYS[2]  the set of registered ids
-- ARGV[1]  the changes channel
-- ARGV[2]  the certificate id
-- returns  1 removed, -1 not registered
if redis.call('DEL', KEYS[1]) == 0 then
  return -1
end
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[1], 'removed:' .. ARGV[2])
return 1
