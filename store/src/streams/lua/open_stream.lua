-- The generation's side of a stream open, on its hash tag. KEYS: token, its marker,
-- resume cookie grant, its marker, generation record, history, next resume grant, its
-- marker. ARGV: token presented ('1'/'0'), cookie presented, resume point ('' = none;
-- otherwise a well-formed id), now ms, resume grant lifetime ms, page size.
-- Takes the token (else the cookie) with GETDEL, marking it used; then the record, the
-- history after the resume point and the next resume grant, which copies the taken
-- grant and never outlives its session.
local function take(key, marker, kind)
  local value = redis.call('GETDEL', key)
  if not value then
    local state = redis.call('GET', marker)
    if state == 'used' then return nil, 'replay' end
    if state == 'issued' then return nil, 'expired' end
    return nil, 'unknown'
  end
  redis.call('SET', marker, 'used', 'XX', 'KEEPTTL')
  local ok, grant = pcall(cjson.decode, value)
  if not ok or type(grant) ~= 'table' then return nil, 'unknown' end
  if grant.kind ~= kind then return nil, 'wrong_kind' end
  return value, grant
end
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  local function lt(x, y) if #x ~= #y then return #x < #y end return x < y end
  if am ~= bm then return lt(am, bm) end
  return lt(as, bs)
end
local value, grant, via
if ARGV[1] == '1' then
  value, grant = take(KEYS[1], KEYS[2], 'token')
  via = 'token'
end
if not value and ARGV[2] == '1' then
  local first = grant
  value, grant = take(KEYS[3], KEYS[4], 'resume')
  via = 'cookie'
  if not value and first then grant = first end
end
if not value then return {'refused', grant or 'unknown'} end
local record = redis.call('HMGET', KEYS[5], 'owner_id', 'status')
if not record[1] then return {'gone', value, via} end
if grant.user_id ~= record[1] and grant.admin ~= true then return {'not_owner', value, via} end
local now = tonumber(ARGV[4])
local left = (tonumber(grant.session_expires_at) or 0) - now
if left <= 0 then return {'session_ended', value, via} end
local after = ARGV[3]
local entries, reset
local page = ARGV[6]
if after == '' then
  entries, reset = redis.call('XRANGE', KEYS[6], '-', '+', 'COUNT', page), 0
else
  local oldest = redis.call('XRANGE', KEYS[6], '-', '+', 'COUNT', 1)[1]
  local newest = redis.call('XREVRANGE', KEYS[6], '+', '-', 'COUNT', 1)[1]
  if not oldest then
    entries, reset = {}, 1
  elseif before(after, oldest[1]) or before(newest[1], after) then
    entries, reset = redis.call('XRANGE', KEYS[6], '-', '+', 'COUNT', page), 1
  else
    entries, reset = redis.call('XRANGE', KEYS[6], '(' .. after, '+', 'COUNT', page), 0
  end
end
local events = {}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'd' then
      events[#events + 1] = entry[1]
      events[#events + 1] = fields[i + 1]
    end
  end
end
local ttl = math.min(tonumber(ARGV[5]), left)
grant.kind = 'resume'
grant.issued_at = now
if not redis.call('SET', KEYS[7], cjson.encode(grant), 'NX', 'PX', ttl) then
  return {'collision', value, via}
end
redis.call('SET', KEYS[8], 'issued', 'NX', 'PX', ttl * 2)
return {'open', value, via, record[1], record[2] or 'pending', reset, ttl, events}
