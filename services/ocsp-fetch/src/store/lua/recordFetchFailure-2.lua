-- Records a failed fetch. The staple, if any, is left exactly as it was.
-- KEYS[1]  the certificate's hash
-- KEYS[2]  the responder's failure hash
-- ARGV[1]  the changes channel
-- ARGV[2]  the certificate id
-- ARGV[3]  lastAttemptAtMs
-- ARGV[4]  nextAttemptAtMs
-- ARGV[5]  lastError
-- ARGV[6]  how long the responder's failure count lives, ms
-- returns  the certificate's consecutive failures, or -1 not registered
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local failures = redis.call('HINCRBY', KEYS[1], 'consecutiveFailures', 1)
redis.call('HSET', KEYS[1], 'lastAttemptAtMs', ARGV[3], 'nextAttemptAtMs', ARGV[4], 'lastError', ARGV[5])
redis.call('HINCRBY', KEYS[2], 'failures', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PUBLISH', ARGV[1], 'updated:' .. ARGV[2])
return failures
