-- KEYS: the session record, the user's session index, the user record, and the
-- session's refresh budget if it has one (one hash tag). ARGV: presented jti, now ms,
-- grace ms, max age ms, refresh ttl ms, new access jti, new refresh jti, now s,
-- session id, the budget's GCRA interval µs, capacity µs and cost. A current or
-- just-retired token spends the budget first; nothing changes when it is spent. The
-- record's numbers are milliseconds or seconds, exact in cjson's 14 significant digits.
-- Answers the verdict, the session and user records, and the decision (-1s: none).
local none = {1, -1, -1, -1}
local function answer(verdict, session, user, d)
  return {verdict, session, user, d[1], d[2], d[3], d[4]}
end
local raw = redis.call('GET', KEYS[1])
if not raw then return answer('gone', false, false, none) end
local s = cjson.decode(raw)
local now = tonumber(ARGV[2])
local left = tonumber(s.created_at) + tonumber(ARGV[4]) - now
if left <= 0 then return answer('expired', false, false, none) end
local current = s.refresh_jti == ARGV[1]
if not current and not (s.previous_refresh_jti == ARGV[1] and type(s.rotated_at) == 'number'
     and now - s.rotated_at <= tonumber(ARGV[3])) then
  return answer('reused', false, false, none)
end
local d = none
if KEYS[4] then
  d = gcra_decide(KEYS[4], tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]))
  if d[1] == 0 then return answer('limited', false, false, d) end
end
if not current then return answer('grace', raw, redis.call('GET', KEYS[3]) or false, d) end
s.previous_refresh_jti = s.refresh_jti
s.rotated_at = now
s.last_seen_at = now
s.access_jti = ARGV[6]
s.refresh_jti = ARGV[7]
s.issued_at = tonumber(ARGV[8])
local rotated = cjson.encode(s)
redis.call('SET', KEYS[1], rotated, 'PX', string.format('%.0f', math.min(left, tonumber(ARGV[5]))))
redis.call('SADD', KEYS[2], ARGV[9])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return answer('rotated', rotated, redis.call('GET', KEYS[3]) or false, d)
