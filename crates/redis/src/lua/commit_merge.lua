-- Make a root the alias of a survivor, if it did not change since it was read.
-- KEYS: loser node. ARGV: survivor, expected version, now.
local parent = redis.call('HGET', KEYS[1], 'parent')
if parent then
  if parent == ARGV[1] then return 'already' end
  return 'changed'
end
if tonumber(redis.call('HGET', KEYS[1], 'version') or '0') ~= tonumber(ARGV[2]) then
  return 'changed'
end
redis.call('HSET', KEYS[1], 'parent', ARGV[1], 'merged_at', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 'done'
