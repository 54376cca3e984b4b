"""Presence's Lua scripts: each per-scope change to Redis is one atomic script (docs/presence.md).

Every per-scope script takes the scope's keys in one order (presence_shared.Shared.keys), all carrying
the scope as a Redis Cluster hash tag so they share a slot:

    KEYS[1] h:{proc}  the users this process holds in the scope (makes every write idempotent)
    KEYS[2] r         user id → how many processes hold the user
    KEYS[3] t         user id → arrival number (the frame's top 50; ZCARD: the count)
    KEYS[4] n         "lowercased display name\\0user id" scored 0 (paging by name)
    KEYS[5] b         user id → User brief JSON
    KEYS[6] m         user id → its :n member
    KEYS[7] q         arrival numbers
    KEYS[8] g         proc → guest sockets there
"""

from __future__ import annotations

import hashlib

_DROP = """
local function drop(uid)
  redis.call('HDEL', KEYS[2], uid)
  redis.call('ZREM', KEYS[3], uid)
  local member = redis.call('HGET', KEYS[6], uid)
  if member then redis.call('ZREM', KEYS[4], member) end
  redis.call('HDEL', KEYS[6], uid)
  redis.call('HDEL', KEYS[5], uid)
  return 1
end
"""
# ARGV: proc, shared ttl ms, held ttl ms, guests here (-1: unchanged), then (op, uid, member, brief)…
# An op is idempotent: a join the held set already has, or a leave it does not, changes nothing, so a
# retried or repeated batch (a failed flush, a Redis that restarted empty) is always safe.
APPLY = _DROP + """
local changed = 0
local i = 5
while i <= #ARGV do
  local uid = ARGV[i + 1]
  if ARGV[i] == 'j' then
    if redis.call('SADD', KEYS[1], uid) == 1 and redis.call('HINCRBY', KEYS[2], uid, 1) == 1 then
      redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[7]), uid)
      redis.call('ZADD', KEYS[4], 0, ARGV[i + 2])
      redis.call('HSET', KEYS[6], uid, ARGV[i + 2])
      redis.call('HSET', KEYS[5], uid, ARGV[i + 3])
      changed = changed + 1
    end
  elseif redis.call('SREM', KEYS[1], uid) == 1 and redis.call('HINCRBY', KEYS[2], uid, -1) <= 0 then
    changed = changed + drop(uid)
  end
  i = i + 4
end
local g = tonumber(ARGV[4])
if g >= 0 then
  local old = tonumber(redis.call('HGET', KEYS[8], ARGV[1]) or '0')
  if g > 0 then redis.call('HSET', KEYS[8], ARGV[1], g) else redis.call('HDEL', KEYS[8], ARGV[1]) end
  if old ~= g then changed = changed + 1 end
end
for k = 2, 8 do redis.call('PEXPIRE', KEYS[k], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return changed
"""
# A dead (or stopping) process's share of a scope, given back. ARGV: proc.
REAP = _DROP + """
local changed = 0
for _, uid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HINCRBY', KEYS[2], uid, -1) <= 0 then changed = changed + drop(uid) end
end
redis.call('DEL', KEYS[1])
changed = changed + redis.call('HDEL', KEYS[8], ARGV[1])
return changed
"""
# The heartbeat. ARGV: shared ttl, held ttl, users held here (0/1), guests here, proc → 0 if Redis lost our part.
RENEW = """
for k = 2, 8 do redis.call('PEXPIRE', KEYS[k], ARGV[1]) end
local ok = 1
if ARGV[3] == '1' and redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then ok = 0 end
if tonumber(ARGV[4]) > 0 and redis.call('HEXISTS', KEYS[8], ARGV[5]) == 0 then ok = 0 end
return ok
"""
# What a frame shows: bounded, whatever the crowd. ARGV: TOP, proc → {count, guests, our guests, briefs…}
VIEW = """
local ids = redis.call('ZREVRANGE', KEYS[3], 0, tonumber(ARGV[1]) - 1)
local guests = 0
for _, v in ipairs(redis.call('HVALS', KEYS[8])) do guests = guests + tonumber(v) end
local out = {redis.call('ZCARD', KEYS[3]), guests, tonumber(redis.call('HGET', KEYS[8], ARGV[2]) or '0')}
if #ids > 0 then
  local briefs = redis.call('HMGET', KEYS[5], unpack(ids))
  for i = 1, #ids do out[#out + 1] = briefs[i] or '' end
end
return out
"""
# One page by display name. ARGV: after (a :n member, '' for the start), limit → {count, guests, more, briefs…}
PAGE = """
local low = '-'
if ARGV[1] ~= '' then low = '(' .. ARGV[1] end
local limit = tonumber(ARGV[2])
local members = redis.call('ZRANGEBYLEX', KEYS[4], low, '+', 'LIMIT', 0, limit + 1)
local more = 0
if #members > limit then more = 1; members[#members] = nil end
local guests = 0
for _, v in ipairs(redis.call('HVALS', KEYS[8])) do guests = guests + tonumber(v) end
local out = {redis.call('ZCARD', KEYS[3]), guests, more}
if #members > 0 then
  local uids = {}
  for i, m in ipairs(members) do uids[i] = tostring(tonumber(string.sub(m, -20))) end
  local briefs = redis.call('HMGET', KEYS[5], unpack(uids))
  for i = 1, #members do out[#out + 1] = members[i]; out[#out + 1] = briefs[i] or '' end
end
return out
"""
SCRIPTS = {"apply": APPLY, "reap": REAP, "renew": RENEW, "view": VIEW, "page": PAGE}
SHAS = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in SCRIPTS.items()}
