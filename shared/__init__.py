"""The library the services are built from, in layers; a package imports only from layers below
its own (tests/unit/test_layers.py holds the table and fails on an import that runs back up).

  0  errors, contracts    failure classes; the versioned messages and events services exchange
  1  sync                 the pure core: file versions, the one-way and two-way decisions, keys
  2  config, observability  settings, connectors, secrets, identity rules; tracing and metrics
  3  sources, store, storage, messaging
                          SMB and SharePoint backends; every Redis key; the S3 target; the broker
  4  app                  what a service process holds (Runtime) and the runs' life cycle
Services (services/*) stand on top and never import one another.
"""
