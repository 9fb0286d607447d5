-- The Lua source of `capped_add(key, expires_at_ms, now_ms, member, max)`: drops the
-- expired members, admits a new one only below `max` (a member already in is renewed),
-- and keeps the set alive as long as its longest-lived member. Answers 1 or 0.
local function capped_add(key, expires_at, now, member, max)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, member) and redis.call('ZCARD', key) >= tonumber(max) then
    return 0
  end
  redis.call('ZADD', key, expires_at, member)
  local lives_for = math.max(tonumber(expires_at) - tonumber(now), 1)
  if redis.call('PTTL', key) < lives_for then
    redis.call('PEXPIRE', key, lives_for)
  end
  return 1
end
