package redisstore

import "github.com/redis/go-redis/v9"

// The buckets follow edge/ratelimit exactly (continuous refill at limit/60
// per second, a request larger than the bucket passes once it is full, a
// changed limit keeps the used part), and the quotas follow edge/quota
// (settled plus reserved, checked in quota.Checks order), but run inside
// Redis: one script per admission and one per settlement, so edges never
// read, decide and write back (which would race). Time is Redis's own
// clock (TIME), so edges with skewed clocks share one bucket correctly.
//
// A client's keys share the hash tag {client}, so they live in one Redis
// Cluster slot, as a script's keys must. Reservations are held per edge
// (fields rt:EDGE and rc:EDGE of a period's hash), so those of an edge that
// died can be released by the others (see Store.reap); settled totals are
// ut (tokens) and uc (USD).

// luaBucket is shared by both scripts: refill and resize one bucket.
const luaBucket = `
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function refill(oldcap, lvl, last, cap)
  if lvl == nil then return cap end
  if oldcap > 0 and now > last then lvl = math.min(oldcap, lvl + (now - last) * oldcap / 60) end
  if oldcap ~= cap then lvl = cap - (oldcap - lvl) end
  return lvl
end
local function untilfull(cap, lvl)
  if cap <= 0 or lvl >= cap then return 0 end
  return (cap - lvl) / (cap / 60)
end
`

// admitScript: KEYS rl, qday, qmonth; ARGV rpm, tpm, tokens, want tokens,
// want cost, edge, day expiry, month expiry (unix s), then the four quota
// limits of quota.Checks. Returns status (0 admitted, 1 rate limited,
// 2 over a quota), retry ms, the exceeded limit name, requests remaining
// and reset ms, tokens remaining and reset ms, the 1-based index of the
// exceeded quota and its used amount (a string: Redis truncates numbers).
var admitScript = redis.NewScript(luaBucket + `
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wtok, wcost = tonumber(ARGV[4]), tonumber(ARGV[5])
local limited = rpm > 0 or tpm > 0
local rq, tk = 0, 0
if limited then
  local s = redis.call('HMGET', KEYS[1], 'rpm', 'tpm', 'rl', 'tl', 't')
  local last = tonumber(s[5]) or now
  rq = refill(tonumber(s[1]) or 0, tonumber(s[3]), last, rpm)
  tk = refill(tonumber(s[2]) or 0, tonumber(s[4]), last, tpm)
end
local function wait(n, cap, lvl)
  local need = math.min(n, cap)
  if lvl >= need then return 0 end
  return (need - lvl) / (cap / 60)
end
local retry, which = 0, ''
if rpm > 0 then local w = wait(1, rpm, rq); if w > 0 then retry, which = w, 'requests' end end
if tpm > 0 then local w = wait(tokens, tpm, tk); if w > retry then retry, which = w, 'tokens' end end
local status, qi, used = 0, 0, '0'
if retry > 0 then
  status = 1
else
  local function sum(key)
    local h = redis.call('HGETALL', key)
    local tok, cost = 0, 0
    for i = 1, #h, 2 do
      local f, v = h[i], tonumber(h[i + 1])
      if f == 'ut' or string.sub(f, 1, 3) == 'rt:' then tok = tok + v
      elseif f == 'uc' or string.sub(f, 1, 3) == 'rc:' then cost = cost + v end
    end
    return tok, cost
  end
  local dt, dc = sum(KEYS[2])
  local mt, mc = sum(KEYS[3])
  local checks = {{tonumber(ARGV[9]), dt, wtok}, {tonumber(ARGV[10]), mt, wtok},
    {tonumber(ARGV[11]), dc, wcost}, {tonumber(ARGV[12]), mc, wcost}}
  for i, c in ipairs(checks) do
    if c[1] > 0 and c[2] + c[3] > c[1] then
      status, qi, used = 2, i, string.format('%.17g', c[2])
      break
    end
  end
  if status == 0 then
    if rpm > 0 then rq = rq - 1 end
    if tpm > 0 then tk = tk - tokens end
    for _, k in ipairs({KEYS[2], KEYS[3]}) do
      redis.call('HINCRBY', k, 'rt:' .. ARGV[6], wtok)
      redis.call('HINCRBYFLOAT', k, 'rc:' .. ARGV[6], ARGV[5])
    end
    redis.call('EXPIREAT', KEYS[2], ARGV[7])
    redis.call('EXPIREAT', KEYS[3], ARGV[8])
  end
end
local rr, tr = untilfull(rpm, rq), untilfull(tpm, tk)
if limited then
  redis.call('HSET', KEYS[1], 'rpm', rpm, 'tpm', tpm, 'rl', rq, 'tl', tk, 't', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(rr, tr) * 1000) + 1000)
end
return {status, math.ceil(retry * 1000), which, math.max(0, math.floor(rq)), math.ceil(rr * 1000),
  math.max(0, math.floor(tk)), math.ceil(tr * 1000), qi, used}
`)

// settleScript: KEYS rl, qday, qmonth; ARGV edge, held tokens, held cost,
// actual tokens, actual cost, bucket correction (actual minus estimated
// tokens), day expiry, month expiry, release ("1": release the edge's
// reservation; "0": a request admitted while Redis was away, charge only).
var settleScript = redis.NewScript(luaBucket + `
for _, k in ipairs({KEYS[2], KEYS[3]}) do
  if ARGV[9] == '1' then
    -- A hold at or below zero is gone (or was never there: Redis lost
    -- its memory while the request ran), never a credit.
    if redis.call('HINCRBY', k, 'rt:' .. ARGV[1], -tonumber(ARGV[2])) <= 0 then redis.call('HDEL', k, 'rt:' .. ARGV[1]) end
    local c = tonumber(redis.call('HINCRBYFLOAT', k, 'rc:' .. ARGV[1], -tonumber(ARGV[3])))
    if c < 1e-9 then redis.call('HDEL', k, 'rc:' .. ARGV[1]) end
  end
  redis.call('HINCRBY', k, 'ut', ARGV[4])
  redis.call('HINCRBYFLOAT', k, 'uc', ARGV[5])
end
redis.call('EXPIREAT', KEYS[2], ARGV[7])
redis.call('EXPIREAT', KEYS[3], ARGV[8])
local d = tonumber(ARGV[6])
if d ~= 0 then
  local s = redis.call('HMGET', KEYS[1], 'rpm', 'tpm', 'rl', 'tl', 't')
  local rpm, tpm = tonumber(s[1]) or 0, tonumber(s[2]) or 0
  if tpm > 0 and s[4] then
    local last = tonumber(s[5]) or now
    local rq, tk = refill(rpm, tonumber(s[3]), last, rpm), refill(tpm, tonumber(s[4]), last, tpm)
    tk = math.min(tpm, tk - d)
    redis.call('HSET', KEYS[1], 'rl', rq, 'tl', tk, 't', now)
    redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(untilfull(rpm, rq), untilfull(tpm, tk)) * 1000) + 1000)
  end
end
return 1
`)
