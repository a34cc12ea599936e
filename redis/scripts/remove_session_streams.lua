-- Drops every replay stream of a session and ends their live readers on every node.
-- KEYS[1] stream index   KEYS[2] byte totals of the streams
-- ARGV[1] key prefix of the session's streams   ARGV[2] pub/sub channel of the session
local names = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, name in ipairs(names) do
  redis.call('DEL', ARGV[1] .. name)
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[2], '!endall')
return #names
