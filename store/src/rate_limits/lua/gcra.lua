-- One decision per call. KEYS[1]: the subject's key. ARGV: interval µs, capacity µs,
-- cost.
return gcra_decide(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
