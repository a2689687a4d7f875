-- Write profiles' records, each unless a newer partition owner wrote it already.
-- KEYS: (record, outbox, merge marker) per profile. ARGV: (epoch, the record
-- '<epoch>:<format>:<data>', the outbox or '' to keep the current one, '1' when the owner
-- planned on a record it kept in memory since its own last write, else '') per profile. A
-- record's head is its writer's epoch.
-- A kept record must still be this owner's last write (same epoch) and not marked merged;
-- when one is not, nothing is written: the owner plans the batch again from Redis.
-- Two calls however many profiles (a script's calls are most of its cost): one MGET reads
-- the records and markers, one MSET writes those not fenced with their outboxes.
-- Returns 1 (written), 0 (fenced) or 2 (nothing written: a kept record is stale) per profile.
local n = #KEYS / 3
local reads = {}
for i = 1, n do
  reads[2 * i - 1] = KEYS[3 * i - 2]
  reads[2 * i] = KEYS[3 * i]
end
local current = redis.call('MGET', unpack(reads))
local written, writes, stale = {}, {}, false
for i = 1, n do
  local head = current[2 * i - 1]
  local epoch = head and tonumber(string.match(head, '^(%d+):') or '0') or 0
  local mine = tonumber(ARGV[4 * i - 3])
  if epoch > mine then
    written[i] = 0
  elseif ARGV[4 * i] ~= '' and (not head or epoch < mine or current[2 * i]) then
    stale = true
  else
    writes[#writes + 1] = KEYS[3 * i - 2]
    writes[#writes + 1] = ARGV[4 * i - 2]
    if ARGV[4 * i - 1] ~= '' then
      writes[#writes + 1] = KEYS[3 * i - 1]
      writes[#writes + 1] = ARGV[4 * i - 1]
    end
    written[i] = 1
  end
end
if stale then
  for i = 1, n do written[i] = 2 end
  return written
end
if #writes > 0 then redis.call('MSET', unpack(writes)) end
return written
