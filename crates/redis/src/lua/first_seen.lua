-- Dedup: 1 when the event id is new within the window (or seen at the same position).
-- KEYS: marker. ARGV: position, window ms.
local at = redis.call('GET', KEYS[1])
if at then
  if at == ARGV[1] then return 1 end
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
