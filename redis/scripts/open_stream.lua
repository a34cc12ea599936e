-- Opens one SSE replay stream of a session (idempotent) and evicts the oldest stream when the
-- session already holds the maximum. All keys share the session's hash tag (one cluster slot).
-- KEYS[1] stream index (zset: stream name -> order; finished streams sort first)
-- KEYS[2] the stream (Redis Stream)   KEYS[3] byte totals (hash: stream name -> bytes)
-- ARGV[1] stream name   ARGV[2] ttl ms   ARGV[3] max streams per session
-- ARGV[4] key prefix of the session's streams (prefix .. name is a stream key)
-- ARGV[5] pub/sub channel of the session's streams
local index, stream, totals = KEYS[1], KEYS[2], KEYS[3]
local name, ttl, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('ZSCORE', index, name) then
  redis.call('PEXPIRE', index, ttl)
  redis.call('PEXPIRE', stream, ttl)
  redis.call('PEXPIRE', totals, ttl)
  return 0
end
while redis.call('ZCARD', index) >= cap do
  local victim = redis.call('ZRANGE', index, 0, 0)[1]
  redis.call('ZREM', index, victim)
  redis.call('DEL', ARGV[4] .. victim)
  redis.call('HDEL', totals, victim)
  redis.call('PUBLISH', ARGV[5], '!end\n' .. victim)
end
local top = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
local order = 1
if top[2] then order = math.max(tonumber(top[2]), 0) + 1 end
redis.call('ZADD', index, order, name)
-- An empty stream that remembers its last id: later ids keep increasing.
redis.call('XADD', stream, 'MAXLEN', 0, '*', 'o', '1')
redis.call('HSET', totals, name, 0)
redis.call('PEXPIRE', index, ttl)
redis.call('PEXPIRE', stream, ttl)
redis.call('PEXPIRE', totals, ttl)
return 1
