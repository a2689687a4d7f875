-- Write a profile's record, unless a newer partition owner wrote it already.
-- KEYS: record hash. ARGV: epoch, record JSON, outbox JSON ('' keeps the current outbox).
local stored = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if stored > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'rec', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'outbox', ARGV[3]) end
return 1
