"""The Lua scripts of the conflict records (shared/store/conflict_records.py, where the keys they
touch are laid out): each one step on one conflict's keys, so two services never both do the
same once-only thing.
"""
# Each script names its KEYS and ARGV in the comment above it.

# Create the record once (a redelivered or re-detected conflict is the same id); hold the path.
# An older open conflict on the same path is superseded by this one.
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local old = redis.call('HGET', KEYS[3], ARGV[2])
if old and old ~= ARGV[1] and old == ARGV[4] and redis.call('HGET', KEYS[4], 'state') == 'open' then
  redis.call('HSET', KEYS[4], 'state', 'superseded', 'superseded_by', ARGV[1])
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
return 1
"""

# Move a record from `open` to a new state; returns the state found ('open' = this call won).
TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
if state ~= ARGV[1] then return state end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return ARGV[1]
"""

# Release a held path, but only while it is held for this conflict.
UNHOLD = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

# A flag set once on an existing record (HSETNX alone would create a stray hash).
FLAG = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
"""

# Cluster mode's first step of _CREATE: the record, once. KEYS: record; ARGV: its fields.
CREATE_RECORD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Extend a lease, but only while this holder still has it.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# The e-mail's Message-ID, chosen once: ARGV[1] unless one was kept before; false: no record.
MESSAGE_ID = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSETNX', KEYS[1], 'mail_message_id', ARGV[1])
return redis.call('HGET', KEYS[1], 'mail_message_id')
"""

# A failed try at a notice: the count of failures (-1: no record); at ARGV[1] failures the
# notice has failed for good: ARGV[2] is the error, ARGV[3] the time.
NOTICE_FAILED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = redis.call('HINCRBY', KEYS[1], 'notify_attempts', 1)
if n >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'notify_failed', ARGV[2], 'notify_failed_at', ARGV[3])
end
return n
"""

# Mark a notice failed on an existing record (a dead-lettered detection); 0: no record.
MARK_FAILED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'notify_failed', ARGV[1], 'notify_failed_at', ARGV[2])
return 1
"""

# A decision's job failed for good: shown while the conflict is resolved and not applied.
APPLY_FAILED = """
if redis.call('HGET', KEYS[1], 'state') ~= 'resolved' then return 0 end
if redis.call('HEXISTS', KEYS[1], 'applied_at') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'apply_failed', ARGV[1], 'apply_failed_at', ARGV[2])
return 1
"""
