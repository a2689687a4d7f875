-- Write profiles' records, each unless a newer partition owner wrote it already.
-- KEYS: (record, outbox) per profile. ARGV: (epoch, the record '<epoch>:<format>:<data>', the
-- outbox or '' to keep the current one) per profile. A record's head is its writer's epoch.
-- Two calls however many profiles (a script's calls are most of its cost): one MGET reads
-- the records, one MSET writes those not fenced with their outboxes.
-- Returns 1 (written) or 0 (fenced) per profile.
local n = #KEYS / 2
local records = {}
for i = 1, n do records[i] = KEYS[2 * i - 1] end
local current = redis.call('MGET', unpack(records))
local written, writes = {}, {}
for i = 1, n do
  local head = current[i]
  local epoch = head and tonumber(string.match(head, '^(%d+):') or '0') or 0
  if epoch > tonumber(ARGV[3 * i - 2]) then
    written[i] = 0
  else
    writes[#writes + 1] = KEYS[2 * i - 1]
    writes[#writes + 1] = ARGV[3 * i - 1]
    if ARGV[3 * i] ~= '' then
      writes[#writes + 1] = KEYS[2 * i]
      writes[#writes + 1] = ARGV[3 * i]
    end
    written[i] = 1
  end
end
if #writes > 0 then redis.call('MSET', unpack(writes)) end
return written
