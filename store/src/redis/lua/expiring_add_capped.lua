-- KEYS: the set. ARGV: expires_at_ms, now_ms, member, max.
return capped_add(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
