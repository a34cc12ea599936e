-- Counts a new session against its owner's cap: adds it to the owner's index only while the
-- index holds fewer than the cap, and slides the index's expiry. The index lives under the
-- owner's hash tag (not the session's), so this script touches that one key only; the caller
-- prunes members whose session is gone and asks again when this says the owner is full.
-- KEYS[1] the owner's session index (zset: session id -> creation ms)
-- ARGV[1] session id   ARGV[2] cap   ARGV[3] creation ms   ARGV[4] ttl ms
-- Returns 1 when added, 0 when the owner already holds the cap.
local index = KEYS[1]
if redis.call('ZCARD', index) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', index, ARGV[3], ARGV[1])
redis.call('PEXPIRE', index, ARGV[4])
return 1
