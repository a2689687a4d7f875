-- Write a profile's record, unless a newer partition owner wrote it already.
-- KEYS: record, outbox. ARGV: epoch, the record ('<epoch>:<data>'), outbox JSON ('' keeps
-- the current outbox). Only the record's head is read: its epoch.
local head = redis.call('GETRANGE', KEYS[1], 0, 20)
local stored = tonumber(string.match(head, '^(%d+):') or '0')
if stored > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3]) end
return 1
