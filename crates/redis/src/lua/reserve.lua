-- Reserve identifiers (and merges) on a root, within its limits.
-- KEYS: node hash (its identifiers are its fields `i:<kind>:<value>`; they are counted here
-- rather than in counter fields of their own, which cost every profile about 50 bytes).
-- The profile's creation time is in its id, so the node does not keep it.
-- ARGV: merges, max_total, max_merges, n_kinds, (kind, max) * n_kinds, members...
-- Three commands, four at most (a script's calls are most of its cost): one HMGET reads the
-- parent, the counters and which members are held; when something is new, HLEN counts the
-- identifiers held, and HKEYS counts them kind by kind only when a kind's limit is in reach;
-- one HSET writes.
local node = KEYS[1]
local merges = tonumber(ARGV[1])
local n_kinds = tonumber(ARGV[4])
local first = 5 + 2 * n_kinds
local fields = {'parent', 'merges', 'version'}
for i = first, #ARGV do fields[#fields + 1] = 'i:' .. ARGV[i] end
local got = redis.call('HMGET', node, unpack(fields))
if got[1] then return {'moved', got[1]} end
local new, seen, per = {}, {}, {}
for i = first, #ARGV do
  local m = ARGV[i]
  if not seen[m] and not got[i - first + 4] then
    seen[m] = true
    new[#new + 1] = m
    local kind = string.match(m, '^([^:]*):')
    per[kind] = (per[kind] or 0) + 1
  end
end
if #new > 0 then
  local limits = {}
  for i = 1, n_kinds do limits[ARGV[3 + 2 * i]] = tonumber(ARGV[4 + 2 * i]) end
  -- The identifiers held are the fields but the counters (a root has no parent). A kind
  -- holds at most them all, so its limit is in reach only if the total plus its new ones
  -- exceeds it: only then are the fields read, kind by kind.
  local total = redis.call('HLEN', node) - (got[2] and 1 or 0) - (got[3] and 1 or 0)
  local held
  for kind, n in pairs(per) do
    local max = limits[kind]
    if max and total + n > max then
      if not held then
        held = {}
        for _, field in ipairs(redis.call('HKEYS', node)) do
          local k = string.match(field, '^i:([^:]*):')
          if k then held[k] = (held[k] or 0) + 1 end
        end
      end
      if (held[kind] or 0) + n > max then
        return {'refused', 'kind', kind}
      end
    end
  end
  if total + #new > tonumber(ARGV[2]) then
    return {'refused', 'total'}
  end
end
local merged = tonumber(got[2] or '0')
if merges > 0 and merged + merges > tonumber(ARGV[3]) then
  return {'refused', 'merges'}
end
local writes = {}
for i = 1, #new do
  writes[#writes + 1] = 'i:' .. new[i]
  writes[#writes + 1] = 1
  if #writes >= 1000 then
    redis.call('HSET', node, unpack(writes))
    writes = {}
  end
end
if merges > 0 then
  writes[#writes + 1] = 'merges'
  writes[#writes + 1] = merged + merges
end
writes[#writes + 1] = 'version'
writes[#writes + 1] = tonumber(got[3] or '0') + 1
redis.call('HSET', node, unpack(writes))
table.insert(new, 1, 'added')
return new
