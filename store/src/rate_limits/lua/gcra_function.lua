-- The Lua source of `gcra_decide(key, interval, capacity, cost)`: GCRA in one atomic
-- step on the store's clock (`TIME`), integer microseconds. The key holds the
-- theoretical arrival time (TAT) and expires with it, so an idle subject leaves
-- nothing behind; a refused request changes nothing. `cost` is 1 (take), 0 (peek) or
-- -1 (give back). Answers `{allowed, remaining, reset_after µs, retry_after µs}`.
-- Prepended (`concat!`) to the scripts that decide in the same round trip as their
-- own work.
local function gcra_step(stored, now, interval, capacity, cost)
  local tat = stored
  if tat < now then tat = now end
  local new_tat = tat + cost * interval
  if new_tat < now then new_tat = now end
  if cost > 0 and new_tat - now > capacity then
    return {0, 0, tat - now, new_tat - capacity - now}, nil
  end
  if cost == 0 then
    local allowed = (tat + interval - now <= capacity) and 1 or 0
    local retry = allowed == 1 and 0 or (tat + interval - capacity - now)
    return {allowed, math.floor((capacity - (tat - now)) / interval), tat - now, retry}, nil
  end
  return {1, math.floor((capacity - (new_tat - now)) / interval), new_tat - now, 0}, new_tat
end
local function gcra_now()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000000 + tonumber(clock[2])
end
local function gcra_decide(key, interval, capacity, cost)
  local now = gcra_now()
  local decision, new_tat = gcra_step(tonumber(redis.call('GET', key) or '0') or 0, now, interval, capacity, cost)
  if new_tat and new_tat > now then
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
  elseif new_tat then
    redis.call('DEL', key)
  end
  return decision
end
