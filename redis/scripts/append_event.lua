-- Appends one SSE event to a session's replay stream, caps the stream, slides its expiry and
-- tells live readers on every node (pub/sub). Returns the new entry id, or false when the
-- stream is not open (never opened, evicted, or its session ended: no resurrection).
-- The caps are exact: the oldest events go while the stream holds more than the event cap or
-- more than the byte cap of event data, except the newest event, which always stays (a live
-- reader must get it). A hash keeps each stream's byte total, so no read of the whole stream.
-- KEYS[1] stream index   KEYS[2] the stream   KEYS[3] the session record
-- KEYS[4] byte totals (hash: stream name -> bytes of event data)
-- ARGV[1] stream name   ARGV[2] data   ARGV[3] '1' for the stream's last event, else '0'
-- ARGV[4] ttl ms   ARGV[5] max events per stream   ARGV[6] pub/sub channel
-- ARGV[7] '1' when the stream lives as long as its session (GET and legacy SSE streams): it is
--         reopened if its buffer expired while the session stayed active
-- ARGV[8] max bytes of event data per stream
local index, stream, session, totals = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, data, last, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local max_events, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[8])
local score = redis.call('ZSCORE', index, name)
if not score then
  if ARGV[7] ~= '1' or redis.call('EXISTS', session) == 0 then
    return false
  end
  redis.call('ZADD', index, 1, name)
  redis.call('HDEL', totals, name)
end
local id = redis.call('XADD', stream, '*', 'd', data, 'l', last)
local bytes = redis.call('HINCRBY', totals, name, #data)
local events = redis.call('XLEN', stream)
while events > 1 and (events > max_events or bytes > max_bytes) do
  local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  local fields = oldest[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'd' then
      bytes = bytes - #fields[i + 1]
    end
  end
  redis.call('XDEL', stream, oldest[1])
  events = events - 1
end
redis.call('HSET', totals, name, bytes)
if last == '1' then
  -- Finished streams are evicted first.
  redis.call('ZADD', index, 'XX', -1, name)
end
redis.call('PEXPIRE', index, ttl)
redis.call('PEXPIRE', stream, ttl)
redis.call('PEXPIRE', totals, ttl)
redis.call('PUBLISH', ARGV[6], name .. '\n' .. id .. '\n' .. last .. '\n' .. data)
return id
