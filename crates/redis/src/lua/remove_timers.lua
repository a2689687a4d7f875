-- Removes timers that fired or were cancelled from a partition's shard.
-- KEYS[1]: the shard (a sorted set). ARGV: profile␟journey, due, profile␟journey, due, ...
-- A timer's member is its profile and journey, its score the due time: it is removed only
-- while its score is still that due, so a later one set for the same journey meanwhile (a
-- rescheduled wait, by this owner or the partition's next) stays. The member as releases
-- before 2026-12-05 wrote it, with the due in it, goes too.
local removed = 0
for i = 1, #ARGV, 2 do
  local member, due = ARGV[i], ARGV[i + 1]
  removed = removed + redis.call('ZREM', KEYS[1], member .. '\31' .. due)
  local score = redis.call('ZSCORE', KEYS[1], member)
  if score and tonumber(score) == tonumber(due) then
    removed = removed + redis.call('ZREM', KEYS[1], member)
  end
end
return removed
