"""Process-level settings for the services that handle or publish one message per file
(scanner, identity, transfer): on many small files their CPU per message, not the network,
sets the pace.

- uvloop: the event loop in C (libuv). aio-pika frames, redis-py replies and the hand-offs to
  worker threads all go through the loop several times per file (a hand-off to a thread and
  back: 0.15 ms of CPU with asyncio's loop, 0.11 ms with uvloop's, on the benchmark machine).
- the SMB backend imported at start (smbprotocol, spnego, cryptography: ~0.2-0.5 s of CPU),
  not inside the first scan or job, so its objects are frozen with the rest.
- gc.freeze(): once started, the modules, pydantic schemas and OpenTelemetry objects (hundreds
  of thousands) never die. Left in the collector's oldest generation they are walked again by
  every full collection; frozen, a collection only looks at what the messages allocated.
"""
from __future__ import annotations

import asyncio
import gc
import importlib


def use_uvloop() -> None:
    """Before `asyncio.run`: new event loops are uvloop's (3.11: the policy is how)."""
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def load_smb_backend() -> None:
    """Import the SMB backend now (before `freeze_startup_objects`)."""
    importlib.import_module("shared.sources.smb.source")


def freeze_startup_objects() -> None:
    """After the service started: collect once, then exempt what survived from collections."""
    gc.collect()
    gc.freeze()
