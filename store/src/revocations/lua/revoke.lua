-- KEYS: the markers of one revocation, then the session records it ends, then (for a
-- session or a user) the user's session index; all under one hash tag. ARGV: the
-- number of markers, the value and lifetime in ms of each, the id of each ended
-- session, then for a user the key prefixes of session records and of session
-- markers and the markers' lifetime: every session in the index ends too, in the
-- same slot. Every argument is checked before anything is written, so the markers
-- are written all together or not at all, and the sessions end with them.
local n = tonumber(ARGV[1])
if not n or n < 0 or n > #KEYS then return redis.error_reply('revoke: bad arguments') end
for i = 1, n do
  local ttl = tonumber(ARGV[2 * i + 1])
  if not ttl or ttl < 1 or not ARGV[2 * i] then
    return redis.error_reply('revoke: bad arguments')
  end
end
local ended = #KEYS - n - 1
local user = 2 * n + 1 + math.max(ended, 0)
if ARGV[user + 1] and not (ended >= 0 and (tonumber(ARGV[user + 3]) or 0) >= 1) then
  return redis.error_reply('revoke: bad arguments')
end
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[2 * i], 'PX', ARGV[2 * i + 1])
end
for j = 1, ended do
  redis.call('DEL', KEYS[n + j])
  redis.call('SREM', KEYS[#KEYS], ARGV[2 * n + 1 + j])
end
if ARGV[user + 1] then
  for _, sid in ipairs(redis.call('SMEMBERS', KEYS[#KEYS])) do
    redis.call('SET', ARGV[user + 2] .. sid, '1', 'PX', ARGV[user + 3])
    redis.call('DEL', ARGV[user + 1] .. sid)
  end
  redis.call('DEL', KEYS[#KEYS])
end
return n
