-- Reserve identifiers (and merges) on a root, within its limits.
-- KEYS: node hash (its identifiers are its fields `i:<kind>:<value>`; they are counted here
-- rather than in counter fields of their own, which cost every profile about 50 bytes).
-- The profile's creation time is in its id, so the node does not keep it.
-- ARGV: merges, max_total, max_merges, n_kinds, (kind, max) * n_kinds, members...
local node = KEYS[1]
local parent = redis.call('HGET', node, 'parent')
if parent then return {'moved', parent} end
local merges = tonumber(ARGV[1])
local max_total, max_merges = tonumber(ARGV[2]), tonumber(ARGV[3])
local n_kinds = tonumber(ARGV[4])
local limits = {}
for i = 1, n_kinds do limits[ARGV[3 + 2 * i]] = tonumber(ARGV[4 + 2 * i]) end
local total, held = 0, {}
for _, field in ipairs(redis.call('HKEYS', node)) do
  local kind = string.match(field, '^i:([^:]*):')
  if kind then
    total = total + 1
    held[kind] = (held[kind] or 0) + 1
  end
end
local new, seen, per = {}, {}, {}
for i = 5 + 2 * n_kinds, #ARGV do
  local m = ARGV[i]
  if not seen[m] and redis.call('HEXISTS', node, 'i:' .. m) == 0 then
    seen[m] = true
    new[#new + 1] = m
    local kind = string.match(m, '^([^:]*):')
    per[kind] = (per[kind] or 0) + 1
  end
end
for kind, n in pairs(per) do
  local max = limits[kind]
  if max and (held[kind] or 0) + n > max then
    return {'refused', 'kind', kind}
  end
end
if total + #new > max_total then
  return {'refused', 'total'}
end
if merges > 0 and tonumber(redis.call('HGET', node, 'merges') or '0') + merges > max_merges then
  return {'refused', 'merges'}
end
local fields = {}
for i = 1, #new do
  fields[#fields + 1] = 'i:' .. new[i]
  fields[#fields + 1] = 1
  if #fields >= 1000 then
    redis.call('HSET', node, unpack(fields))
    fields = {}
  end
end
if #fields > 0 then redis.call('HSET', node, unpack(fields)) end
if merges > 0 then redis.call('HINCRBY', node, 'merges', merges) end
redis.call('HINCRBY', node, 'version', 1)
table.insert(new, 1, 'added')
return new
