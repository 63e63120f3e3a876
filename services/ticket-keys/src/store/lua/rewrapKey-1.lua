--[[
  Replaces one key record by the same key wrapped under another KEK, only if
  the record is still the one that was read (nothing else changed meanwhile).
  The key itself does not change, so neither does the epoch.

  KEYS[1] keys hash
  ARGV[1] key name (hex)   ARGV[2] record as read (JSON)   ARGV[3] rewrapped record (JSON)

  Returns 1 when replaced, or
    -4  the key is gone or its record changed (rewrap again)
]]
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return -4 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
