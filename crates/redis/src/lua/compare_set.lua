-- KEYS: a string key, or a hash key with ARGV[3] the field. ARGV: expected, new.
if ARGV[3] then
  if redis.call('HGET', KEYS[1], ARGV[3]) == ARGV[1] then redis.call('HSET', KEYS[1], ARGV[3], ARGV[2]) end
elseif redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
