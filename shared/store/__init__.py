"""Everything kept in Redis, behind typed methods: the one place a key is built. Connectors,
shares, the index and failures (`state.State`), runs and leases (`runs`), the Lua scripts
(`scripts`), conflicts (`conflict_records`), a streaming scan's working set (`scan_listing`),
per-day counters and the stale flag (`daily_counters`), key rotation (`key_rotation`).

May import: `shared.errors`, `shared.contracts`, `shared.sync`, `shared.config`,
`shared.observability`.
"""
