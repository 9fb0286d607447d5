-- Stream token statistics, on the `{stats}` hash tag. KEYS: the issued, consumed and
-- rejected counters, the hash of live tokens by expiry second. ARGV: now ms, read
-- ('1'/'0'), the three counts to add, then (expiry second, change) pairs. A second
-- already begun is left out (its tokens count no more); a second that comes to zero
-- is deleted, and so are the seconds past. The hash expires with its last second.
-- With read, answers active, issued, consumed, rejected.
local now = tonumber(ARGV[1])
for i = 1, 3 do
  if ARGV[i + 2] ~= '0' then redis.call('INCRBY', KEYS[i], ARGV[i + 2]) end
end
local last = 0
for i = 6, #ARGV - 1, 2 do
  local second = tonumber(ARGV[i])
  if second * 1000 > now then
    if redis.call('HINCRBY', KEYS[4], ARGV[i], ARGV[i + 1]) == 0 then
      redis.call('HDEL', KEYS[4], ARGV[i])
    end
    if second > last then last = second end
  end
end
if last > 0 then
  local past = {}
  for _, field in ipairs(redis.call('HKEYS', KEYS[4])) do
    local second = tonumber(field)
    if not second or second * 1000 <= now then past[#past + 1] = field end
  end
  if #past > 0 then redis.call('HDEL', KEYS[4], unpack(past)) end
  redis.call('PEXPIREAT', KEYS[4], last * 1000, 'GT')
  redis.call('PEXPIREAT', KEYS[4], last * 1000, 'NX')
end
if ARGV[2] ~= '1' then return 0 end
local active = 0
local live = redis.call('HGETALL', KEYS[4])
for i = 1, #live, 2 do
  local second = tonumber(live[i])
  if second and second * 1000 > now then active = active + tonumber(live[i + 1]) end
end
local totals = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])
return {math.max(active, 0), tonumber(totals[1]) or 0, tonumber(totals[2]) or 0,
  tonumber(totals[3]) or 0}
