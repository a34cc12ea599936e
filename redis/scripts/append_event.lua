-- Appends one SSE event to a session's replay stream, caps the stream, slides its expiry and
-- tells live readers on every node (pub/sub). Returns the new entry id, or false when the
-- stream is not open (never opened, evicted, or its session ended: no resurrection).
-- KEYS[1] stream index   KEYS[2] the stream   KEYS[3] the session record
-- ARGV[1] stream name   ARGV[2] data   ARGV[3] '1' for the stream's last event, else '0'
-- ARGV[4] ttl ms   ARGV[5] max events per stream   ARGV[6] pub/sub channel
-- ARGV[7] '1' when the stream lives as long as its session (GET and legacy SSE streams): it is
--         reopened if its buffer expired while the session stayed active
local index, stream, session = KEYS[1], KEYS[2], KEYS[3]
local name, data, last, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local score = redis.call('ZSCORE', index, name)
if not score then
  if ARGV[7] ~= '1' or redis.call('EXISTS', session) == 0 then
    return false
  end
  redis.call('ZADD', index, 1, name)
end
local id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[5], '*', 'd', data, 'l', last)
if last == '1' then
  -- Finished streams are evicted first.
  redis.call('ZADD', index, 'XX', -1, name)
end
redis.call('PEXPIRE', index, ttl)
redis.call('PEXPIRE', stream, ttl)
redis.call('PUBLISH', ARGV[6], name .. '\n' .. id .. '\n' .. last .. '\n' .. data)
return id
