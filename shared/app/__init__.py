"""What a service process is made of: `runtime.Runtime` (settings, store, broker, storage) and
its start and stop, the run life cycle shared by every stage (`run_lifecycle`), a held
connector's work parked, watched and waited for (`held_work`), the sources kept open between
jobs (`source_pool`), and the CPU settings of the per-file services (`hot_loop`).

May import: every other `shared` package.
"""
