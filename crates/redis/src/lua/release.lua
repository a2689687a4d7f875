-- Give back identifiers reserved by a merge that did not commit.
-- KEYS: node hash. ARGV: members.
for i = 1, #ARGV do
  redis.call('HDEL', KEYS[1], 'i:' .. ARGV[i])
end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
