"""The Lua scripts of `runs.RunState` and `state.State`: each read-check-write on the run and
lease keys is atomic in Redis, so two workers (or a worker and the scheduler) never both count,
close or release; and what a transfer job reads before it starts, in one call."""

HOURS_KEPT_S = 8 * 86400  # the hour's counters (daily_counters.py): a week of charts, and a day

# Count one finished job once, renew the lease, and tell the caller if it closed the run.
# Returns -1: job of a stale run (not counted), 0: duplicate (or late: its run is closing, all
# its jobs counted; the done set is dropped at close), 1: counted, 2: counted and last.
# In the same step (one round trip per job): the job's index entry is written whatever the
# count (the bucket holds the object); the share's usage unless the job was counted before
# (a second worker on the same job); the day's counters only if counted.
# ARGV: run, job, lease ttl, done ttl, index path ('' = none), record, usage delta, day ttl,
# number of run counter pairs, the run counter pairs, then the day counter pairs. KEYS: run,
# done set, lease, index, usage, day, hour (the day's counters go to the hour's too).
RECORD_OUTCOME = """
if ARGV[5] ~= '' then redis.call('HSET', KEYS[4], ARGV[5], ARGV[6]) end
if redis.call('HGET', KEYS[1], 'run_id') ~= ARGV[1] then
  if ARGV[7] ~= '0' then redis.call('INCRBY', KEYS[5], ARGV[7]) end
  return -1
end
if redis.call('HEXISTS', KEYS[1], 'closing') == 1 then return 0 end
if redis.call('SADD', KEYS[2], ARGV[2]) == 0 then return 0 end
if ARGV[7] ~= '0' then redis.call('INCRBY', KEYS[5], ARGV[7]) end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local daily_from = 10 + 2 * tonumber(ARGV[9])
for i = 10, daily_from - 1, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = daily_from, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[6], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[7], ARGV[i], ARGV[i + 1])
end
if #ARGV >= daily_from then
  redis.call('EXPIRE', KEYS[6], ARGV[8])
  redis.call('EXPIRE', KEYS[7], HOURS_KEPT_S)
end
local done = redis.call('HINCRBY', KEYS[1], 'jobs_done', 1)
if redis.call('GET', KEYS[3]) == ARGV[1] and redis.call('PTTL', KEYS[3]) > 0 then
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
local total = tonumber(redis.call('HGET', KEYS[1], 'jobs_total') or '-1')
if total >= 0 and done >= total and redis.call('HSETNX', KEYS[1], 'closing', 1) == 1 then
  return 2
end
return 1
"""

# The scan published `total` jobs: the run may already be complete (or empty).
SCAN_DONE = """
if redis.call('HGET', KEYS[1], 'run_id') ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'jobs_total', ARGV[2], 'phase', 'transferring')
for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
local done = tonumber(redis.call('HGET', KEYS[1], 'jobs_done') or '0')
if done >= tonumber(ARGV[2]) and redis.call('HSETNX', KEYS[1], 'closing', 1) == 1 then
  return 2
end
return 1
"""

# Extend a lease still held by this run (a paused run's lease has no expiry: leave it so).
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('PTTL', KEYS[1]) > 0 then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

CLAIM = """
if redis.call('HGET', KEYS[1], 'run_id') ~= ARGV[1] then return 0 end
return redis.call('HSETNX', KEYS[1], 'closing', 1)
"""

# A run whose lease ran out without an end (its workers, or the closer that took its 'closing'
# token, died): the sweep takes the lease for it (once: another sweep finds it held) and closes
# it. KEYS: run, lease; ARGV: run id, ttl ms. 1 if taken.
TAKE_ABANDONED = """
if redis.call('HGET', KEYS[1], 'run_id') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'phase') == 'finished' then return 0 end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'closing', 1)
return 1
"""

# Compare-and-delete: a stale holder can never release (or extend) a newer run's lease.
# Take a connector's lease for a new run. KEYS: lease, run; ARGV: run id, ttl ms. 1 if taken:
# free, or held by a run whose record reads finished (its closer died between writing the end
# and freeing the lease: nothing else would free it before its expiry, and every request in
# between would be dropped as coalesced).
ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
local holder = redis.call('GET', KEYS[1])
if holder and redis.call('HGET', KEYS[2], 'run_id') == holder
    and redis.call('HGET', KEYS[2], 'phase') == 'finished' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# What a transfer job reads before it starts (State.job_context): one command instead of a
# pipeline of five (redis-py's cost is per command). KEYS: connector, status, index[, share,
# usage]; ARGV: the path. Returns connector, paused, auth_failed, index entry[, share, usage].
JOB_CONTEXT = """
local held = redis.call('HMGET', KEYS[2], 'paused', 'auth_failed')
local out = {redis.call('GET', KEYS[1]), held[1], held[2], redis.call('HGET', KEYS[3], ARGV[1])}
if #KEYS > 3 then
  out[5] = redis.call('GET', KEYS[4])
  out[6] = redis.call('GET', KEYS[5])
end
return out
"""

# What a batch of transfers reads before it starts (batch_records.BatchRecords.context). KEYS:
# connector, status, index[, share, usage]; ARGV: the paths. Returns connector, paused,
# auth_failed, share, usage, then each path's index entry (nil where none).
BATCH_CONTEXT = """
local held = redis.call('HMGET', KEYS[2], 'paused', 'auth_failed')
local out = {redis.call('GET', KEYS[1]), held[1], held[2], false, false}
if #KEYS > 3 then
  out[4] = redis.call('GET', KEYS[4])
  out[5] = redis.call('GET', KEYS[5])
end
if #ARGV > 0 then
  local records = redis.call('HMGET', KEYS[3], unpack(ARGV))
  for i = 1, #records do out[5 + i] = records[i] end
end
return out
"""

# RECORD_OUTCOME for many files at once (batch_records.BatchRecords.record): each file's index
# entry written whatever the count; usage unless counted before; its run and day counters only
# if counted now. KEYS: run, done set, lease, index, usage, day, status, hour. ARGV: run, lease ttl,
# done ttl, day ttl, then six per file: job, index path ('' = none), record, usage delta, run
# counters and day counters ('name=n,name=n'). Returns: -1 (stale run) / 1 / 2 (counted the
# run's last job: the caller closes it), paused, auth_failed, then 1/0 per file (counted now).
RECORD_BATCH = """
local same_run = redis.call('HGET', KEYS[1], 'run_id') == ARGV[1]
local open = same_run and redis.call('HEXISTS', KEYS[1], 'closing') == 0
local flags, counted, day = {}, 0, false
for i = 5, #ARGV, 6 do
  if ARGV[i + 1] ~= '' then redis.call('HSET', KEYS[4], ARGV[i + 1], ARGV[i + 2]) end
  local fresh = 0
  if open then fresh = redis.call('SADD', KEYS[2], ARGV[i]) end
  if (fresh == 1 or not same_run) and ARGV[i + 3] ~= '0' then
    redis.call('INCRBY', KEYS[5], ARGV[i + 3])
  end
  if fresh == 1 then
    counted = counted + 1
    for name, n in string.gmatch(ARGV[i + 4], '([%w_]+)=(-?%d+)') do
      redis.call('HINCRBY', KEYS[1], name, n)
    end
    for name, n in string.gmatch(ARGV[i + 5], '([%w_]+)=(-?%d+)') do
      redis.call('HINCRBY', KEYS[6], name, n)
      redis.call('HINCRBY', KEYS[8], name, n)
      day = true
    end
  end
  flags[#flags + 1] = fresh
end
local held = redis.call('HMGET', KEYS[7], 'paused', 'auth_failed')
local status = 1
if not same_run then
  status = -1
elseif counted > 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  if day then
    redis.call('EXPIRE', KEYS[6], ARGV[4])
    redis.call('EXPIRE', KEYS[8], HOURS_KEPT_S)
  end
  local done = redis.call('HINCRBY', KEYS[1], 'jobs_done', counted)
  if redis.call('GET', KEYS[3]) == ARGV[1] and redis.call('PTTL', KEYS[3]) > 0 then
    redis.call('PEXPIRE', KEYS[3], ARGV[2])
  end
  local total = tonumber(redis.call('HGET', KEYS[1], 'jobs_total') or '-1')
  if total >= 0 and done >= total and redis.call('HSETNX', KEYS[1], 'closing', 1) == 1 then
    status = 2
  end
end
local out = {status, held[1], held[2]}
for i = 1, #flags do out[3 + i] = flags[i] end
return out
"""

# The deepest a connector's transfer queue was this hour (the console's queue depth chart).
# KEYS: the hour's counters; ARGV: a depth just read, the hour's expiry (s).
KEEP_MAX = """
local now = tonumber(ARGV[1])
if now > tonumber(redis.call('HGET', KEYS[1], 'queue_depth') or '-1') then
  redis.call('HSET', KEYS[1], 'queue_depth', now)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return now
"""

# The hours' expiry, written into the two scripts that add to them.
RECORD_OUTCOME = RECORD_OUTCOME.replace("HOURS_KEPT_S", str(HOURS_KEPT_S))
RECORD_BATCH = RECORD_BATCH.replace("HOURS_KEPT_S", str(HOURS_KEPT_S))
