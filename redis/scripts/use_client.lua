-- Reads an OAuth client for a use of it and slides its idle expiry, at most once per touch
-- interval (so frequent uses cost no write).
-- KEYS[1] the client index (zset: client id -> expiry ms)   KEYS[2] the client (string)
-- ARGV[1] client id   ARGV[2] now ms   ARGV[3] idle ttl ms   ARGV[4] touch interval ms
-- Returns the client JSON, or nil when it is unknown or expired (an expired one is removed).
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local value = redis.call('GET', KEYS[2])
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not value or not at or tonumber(at) <= now then
  if value then redis.call('DEL', KEYS[2]) end
  if at then redis.call('ZREM', KEYS[1], ARGV[1]) end
  return false
end
if now + ttl - tonumber(at) > tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
end
return value
