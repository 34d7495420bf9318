"""What a service process is made of: `runtime.Runtime` (settings, store, broker, storage) and
its start and stop, the run life cycle shared by every stage (`run_lifecycle`), one consumer
per connector queue (`connector_consumers`), and the CPU settings of the per-file services
(`hot_loop`).

May import: every other `shared` package.
"""
