-- Point an identifier at a profile unless it points somewhere: nil, or the current owner.
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return false end
return redis.call('GET', KEYS[1])
