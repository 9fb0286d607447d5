-- The user's side of a stream open, on their hash tag. KEYS: rate-limit budget, the
-- not-before marker, the session's revocation marker, the session record, the user
-- record, the open streams. ARGV: GCRA interval µs, capacity µs, the grant's issue time
-- (Unix s), the generation's owner for a resume ('' for a stream token), the user id,
-- the stream's place id, its expiry ms, now ms, the most streams a user may hold, then
-- the places of the user's closed streams to give back first, whatever follows.
-- Decides in the order a refusal is told: rate limit, revocation, (for a resume) the
-- session and the role read again, then the place among the user's streams.
--
-- The place is new (a fresh id), so it is added without looking for it first; expired
-- places are swept only when the set is at the cap (below it they refuse nobody, and
-- the set never holds more than the cap), and the set's expiry is set once (a new set)
-- or moved later: the fewest commands inside the script for one decision.
local function take_place(key, expires_at, now, member, max)
  local places = redis.call('ZCARD', key)
  if places >= max then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    places = redis.call('ZCARD', key)
    if places >= max then return 0 end
  end
  redis.call('ZADD', key, expires_at, member)
  local lives_for = math.max(tonumber(expires_at) - tonumber(now), 1)
  if places == 0 then
    redis.call('PEXPIRE', key, lives_for)
  else
    redis.call('PEXPIRE', key, lives_for, 'GT')
  end
  return 1
end
if #ARGV > 9 then redis.call('ZREM', KEYS[6], unpack(ARGV, 10)) end
local d = gcra_decide(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 1)
local function verdict(v) return {v, d[1], d[2], d[3], d[4]} end
if d[1] == 0 then return verdict('limited') end
local markers = redis.call('MGET', KEYS[2], KEYS[3])
local nbf = tonumber(markers[1] or '')
if (nbf and tonumber(ARGV[3]) < nbf) or markers[2] then
  return verdict('revoked')
end
if ARGV[4] ~= '' then
  local user = redis.call('GET', KEYS[5])
  if redis.call('EXISTS', KEYS[4]) == 0 or not user then return verdict('session_ended') end
  local ok, record = pcall(cjson.decode, user)
  if not ok or type(record) ~= 'table' then return verdict('session_ended') end
  local admin = false
  if type(record.roles) == 'table' then
    for _, role in ipairs(record.roles) do
      if role == 'admin' then admin = true end
    end
  end
  if ARGV[5] ~= ARGV[4] and not admin then return verdict('not_owner') end
end
if take_place(KEYS[6], ARGV[7], ARGV[8], ARGV[6], tonumber(ARGV[9])) == 0 then
  return verdict('too_many_streams')
end
return verdict('admitted')
