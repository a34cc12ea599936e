-- Registers an OAuth client under the deployment's cap, atomically on every node.
-- KEYS[1] the client index (zset: client id -> expiry ms)   KEYS[2] the client (string)
-- ARGV[1] client id   ARGV[2] client JSON   ARGV[3] now ms   ARGV[4] idle ttl ms
-- ARGV[5] most live clients
-- Returns 1 when stored, 0 when the cap is reached (nothing is written then).
local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
-- Expiry is decided by the nodes' clock (the scores); Redis's own TTLs only free the memory.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5])
    and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
-- The index outlives every client it lists (every write leaves it the longest TTL).
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
