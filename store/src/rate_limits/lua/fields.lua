-- Budgets kept as the fields of ONE hash (one key, so one slot): the failure
-- budgets of an account or a service client. All or nothing: a take that any of
-- them refuses spends none, and answers each budget's own decision (the refusing
-- ones' refusals, the others' peeks). The hash lives as long as its longest budget;
-- fields whose budget is back are pruned once it holds many. KEYS[1]: the hash.
-- ARGV: cost, then field, interval µs, capacity µs per budget. Answers four
-- numbers per budget, as `gcra.lua`.
local now = gcra_now()
local cost = tonumber(ARGV[1])
local n = (#ARGV - 1) / 3
local tats, decisions, refused = {}, {}, false
for i = 1, n do
  local field, interval, capacity = ARGV[3 * i - 1], tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  tats[i] = tonumber(redis.call('HGET', KEYS[1], field) or '0') or 0
  local d = gcra_step(tats[i], now, interval, capacity, cost)
  if d[1] == 0 then refused = true end
  decisions[i] = d
end
local out = {}
if refused then
  for i = 1, n do
    local d = decisions[i]
    if d[1] == 1 then d = gcra_step(tats[i], now, tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), 0) end
    for _, v in ipairs(d) do table.insert(out, v) end
  end
  return out
end
local longest = 0
for i = 1, n do
  local field = ARGV[3 * i - 1]
  local d, new_tat = gcra_step(tats[i], now, tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), cost)
  if new_tat and new_tat > now then
    redis.call('HSET', KEYS[1], field, string.format('%.0f', new_tat))
    if new_tat - now > longest then longest = new_tat - now end
  elseif new_tat then
    redis.call('HDEL', KEYS[1], field)
  end
  for _, v in ipairs(d) do table.insert(out, v) end
end
if longest > 0 then
  local ttl = math.ceil(longest / 1000)
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
end
if redis.call('HLEN', KEYS[1]) > 64 then
  local all = redis.call('HGETALL', KEYS[1])
  for j = 1, #all, 2 do
    if (tonumber(all[j + 1]) or 0) <= now then redis.call('HDEL', KEYS[1], all[j]) end
  end
end
return out
