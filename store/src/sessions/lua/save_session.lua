-- KEYS: the session record, the user's session index (one hash tag). ARGV: the
-- record, its lifetime in ms, the session id, the index's lifetime in ms.
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return redis.call('SCARD', KEYS[2])
