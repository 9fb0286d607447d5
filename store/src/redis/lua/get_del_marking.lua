-- KEYS: key, marker. ARGV: mark.
local value = redis.call('GETDEL', KEYS[1])
if value then
  redis.call('SET', KEYS[2], ARGV[1], 'XX', 'KEEPTTL')
  return {1, value}
end
return {0, redis.call('GET', KEYS[2]) or ''}
