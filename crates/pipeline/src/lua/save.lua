-- Write profiles' records, each unless a newer partition owner wrote it already.
-- KEYS: (record, outbox) per profile. ARGV: (epoch, the record '<epoch>:<format>:<data>', the
-- outbox or '' to keep the current one) per profile. Only a record's head is read: its epoch.
-- Returns 1 (written) or 0 (fenced) per profile.
local written = {}
for i = 1, #KEYS / 2 do
  local record, outbox = KEYS[2 * i - 1], KEYS[2 * i]
  local epoch = tonumber(ARGV[3 * i - 2])
  local head = redis.call('GETRANGE', record, 0, 20)
  if tonumber(string.match(head, '^(%d+):') or '0') > epoch then
    written[i] = 0
  else
    redis.call('SET', record, ARGV[3 * i - 1])
    if ARGV[3 * i] ~= '' then redis.call('SET', outbox, ARGV[3 * i]) end
    written[i] = 1
  end
end
return written
