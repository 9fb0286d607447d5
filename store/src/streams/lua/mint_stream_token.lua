-- The generation's side of a stream token mint. KEYS: record, token, its marker.
-- ARGV: user id, admin ('1'/'0'), grant, lifetime ms.
local owner = redis.call('HGET', KEYS[1], 'owner_id')
if not owner then return 'gone' end
if owner ~= ARGV[1] and ARGV[2] ~= '1' then return 'not_owner' end
if not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return 'collision' end
redis.call('SET', KEYS[3], 'issued', 'NX', 'PX', tonumber(ARGV[4]) * 2)
return 'stored'
