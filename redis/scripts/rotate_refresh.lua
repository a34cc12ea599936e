-- Rotates a refresh-token family by one generation, atomically on every node.
-- KEYS[1] the family (hash: gen, rotated_at, grant)   KEYS[2] its revocation marker
-- ARGV[1] presented generation   ARGV[2] now ms   ARGV[3] grace ms   ARGV[4] family ttl ms
-- ARGV[5] how long a revoked family's access tokens stay refused (ms)
-- Returns {0} unknown, {1, gen, grant} rotated, {2, gen, grant} concurrent (within grace),
-- {3} reused: the family is deleted and marked revoked.
local f = redis.call('HMGET', KEYS[1], 'gen', 'rotated_at', 'grant')
if not f[1] then
  return {0}
end
local gen = tonumber(f[1])
local presented = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
if presented == gen then
  redis.call('HSET', KEYS[1], 'gen', gen + 1, 'rotated_at', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {1, gen + 1, f[3]}
end
if presented == gen - 1 and now - tonumber(f[2]) <= tonumber(ARGV[3]) then
  return {2, gen, f[3]}
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
return {3}
