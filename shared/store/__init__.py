"""Everything kept in Redis, behind typed methods: the one place a key is built, a command sent
or a Lua script run. A service holds `store.Store` (`Runtime.state`), which opens its own client
from the settings; no module outside this package sees the client, the namespace or a key
(tests/unit/test_store_boundary.py).

Each family's key layout is documented in the one module that owns it: connectors, shares, the
index, status, failures, delta positions, audit and held deletions (`state.State`; the index's
packed values and owner labels in `index_codec`, the binary value's layout in `binary_records`);
a transfer batch's reads and writes
(`batch_records`, one script each); runs and
leases (`runs.RunState`, its scripts in `scripts`); conflicts (`conflict_records`); a streaming
scan's working set (`scan_listing`); per-day counters and the stale flag (`daily_counters`);
claims of long work (`claim_records`); imported users (`users`); directory answers
(`owner_cache`); console sessions and failed token checks (`api_access`); the API's connector
pages (`connector_pages`); when connectors are due and which have parked work
(`schedule_records`); alerts mailed once per incident (`alert_records`); share usage recounts
and quota crossings (`usage_records`); bandwidth buckets and transfer slots per connector
(`throttle_records`); multipart uploads a worker began and did not end (`upload_records`); the
client for single, cluster or sentinel mode (`connection`). Key rotation
(`key_rotation`) rewrites the connectors' records in place. `replies` narrows redis-py's reply
types to the text this package's client (decode_responses, surrogateescape) gets.

May import: `shared.errors`, `shared.contracts`, `shared.sync`, `shared.config`,
`shared.observability`.
"""
