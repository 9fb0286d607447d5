-- The user's side of a stream token mint. KEYS: rate-limit budget, session record.
-- ARGV: GCRA interval µs, capacity µs. Answers the decision and the session record
-- ('' when there is none).
local d = gcra_decide(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 1)
return {d[1], d[2], d[3], d[4], redis.call('GET', KEYS[2]) or ''}
