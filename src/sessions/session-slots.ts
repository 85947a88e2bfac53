/**
 * Redis scripts for the session store's steps that must be atomic: the quotas, and the latest
 * activity. Two launches that both read "2 of 3 running" and both start a session would make
 * 4; a script runs alone in Redis, so counting and reserving are one step. KEYS[1] is the hash
 * of session records, KEYS[2] the hash of reservations: launches under way, each
 * `{repo, client, expiresAt}`, counted like sessions.
 */

/** What a refused reservation names: the cap that is full. */
export type FullQuota = 'total' | 'repo' | 'client';

/**
 * ARGV: name, repo, client ('' = not counted per client), max total, max per repository, max
 * per client (0 = no cap), lease in ms. Returns 'ok', or the quota that is full. A reservation
 * whose lease ran out (its web process died mid-launch) is dropped here, so it cannot hold a
 * slot for ever; the time is Redis's, the same for every web process.
 */
export const RESERVE_SLOT = `
local records, pending = KEYS[1], KEYS[2]
local name, repo, client = ARGV[1], ARGV[2], ARGV[3]
local maxTotal, maxRepo, maxClient = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local total, sameRepo, sameClient = 0, 0, 0
local function count(entry)
  total = total + 1
  if entry.repo == repo then sameRepo = sameRepo + 1 end
  if client ~= '' and entry.client == client then sameClient = sameClient + 1 end
end
for _, text in ipairs(redis.call('HVALS', records)) do
  count(cjson.decode(text))
end
local held = redis.call('HGETALL', pending)
for i = 1, #held, 2 do
  local entry = cjson.decode(held[i + 1])
  if entry.expiresAt < now then redis.call('HDEL', pending, held[i]) else count(entry) end
end
if maxTotal > 0 and total >= maxTotal then return 'total' end
if maxRepo > 0 and sameRepo >= maxRepo then return 'repo' end
if maxClient > 0 and client ~= '' and sameClient >= maxClient then return 'client' end
redis.call('HSET', pending, name, cjson.encode({ repo = repo, client = client, expiresAt = now + tonumber(ARGV[7]) }))
return 'ok'
`;

/**
 * KEYS[3] is the activity hash. ARGV: name, record JSON, created-at ms. Turns a reservation
 * into a session record; returns 0 (and records nothing) when the reservation is gone, its
 * lease run out and perhaps its slot given to another launch.
 */
export const CONFIRM_SLOT = `
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
`;

/** KEYS[1] is the activity hash. ARGV: name, time in ms. Sets the time unless a later one is known. */
export const TOUCH_LATEST = `
local known = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if known == nil or known < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
`;
