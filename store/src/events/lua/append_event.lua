-- KEYS: record, history. ARGV: data, max_len, status, now_ms, ttl_ms, the
-- generation's channel (in its slot: `SPUBLISH`), generation id, progress ('' =
-- unchanged), stage ('' = unchanged), the channel of the release before ('' = none:
-- `PUBLISH` there too while upgrading).
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0} end
if status == 'completed' or status == 'failed' then return {1} end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '*', 'd', ARGV[1])
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'updated_at', ARGV[4])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'stage', ARGV[9]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local message = '{\"g\":\"' .. ARGV[7] .. '\",\"id\":\"' .. id .. '\",\"s\":\"' .. ARGV[3] .. '\",\"d\":' .. ARGV[1] .. '}'
redis.call('SPUBLISH', ARGV[6], message)
if ARGV[10] ~= '' then redis.call('PUBLISH', ARGV[10], message) end
return {2, id}
