-- Give back identifiers reserved by a merge that did not commit.
-- KEYS: node hash. ARGV: members.
for i = 1, #ARGV do
  if redis.call('HDEL', KEYS[1], 'i:' .. ARGV[i]) == 1 then
    redis.call('HINCRBY', KEYS[1], 'n:' .. string.match(ARGV[i], '^([^:]*):'), -1)
    redis.call('HINCRBY', KEYS[1], 'total', -1)
  end
end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
