-- Replaces a session record only if nobody changed it since it was read (compare-and-set on
-- the revision that prefixes the stored value: "<rev>\n<json>"), and slides its expiry.
-- KEYS[1] the session record
-- ARGV[1] the revision that was read   ARGV[2] the new value   ARGV[3] ttl ms
-- Returns 0 when the session is gone, 1 when another writer came first, 2 when saved.
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local newline = string.find(current, '\n', 1, true)
if not newline or string.sub(current, 1, newline - 1) ~= ARGV[1] then
  return 1
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 2
