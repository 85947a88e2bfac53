/**
 * Redis scripts between launches and the image pruner, so neither sees the other half-done. A
 * launch holds its image from before it looks for it until its container exists (Docker then
 * refuses to remove the image); the pruner claims an image before removing it. A claim fails
 * while a hold is live, and a hold waits while a claim is. Times are Redis's, the same for
 * every process. KEYS[1] is the hash of holds (`id → {image, expiresAt}`), KEYS[2] the hash of
 * claims (`image → expiresAt`), KEYS[3] the hash of last launches (`image → ms`).
 */

const NOW = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`;

/**
 * ARGV: image, hold id, lease in ms. Returns 0 while the pruner claims the image (try again
 * soon); else records the launch time, holds the image and returns 1.
 */
export const HOLD_IMAGE = `${NOW}
local claim = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if claim ~= nil and claim >= now then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], now)
redis.call('HSET', KEYS[1], ARGV[2], cjson.encode({ image = ARGV[1], expiresAt = now + tonumber(ARGV[3]) }))
return 1
`;

/**
 * ARGV: image, lease in ms. Returns 0 when a live hold names the image (a launch is under way);
 * else claims it for removal and returns 1. Holds whose lease ran out (their process died) are
 * dropped on the way.
 */
export const CLAIM_IMAGE = `${NOW}
local held = redis.call('HGETALL', KEYS[1])
local busy = false
for i = 1, #held, 2 do
  local entry = cjson.decode(held[i + 1])
  if entry.expiresAt < now then redis.call('HDEL', KEYS[1], held[i])
  elseif entry.image == ARGV[1] then busy = true end
end
if busy then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], now + tonumber(ARGV[2]))
return 1
`;
