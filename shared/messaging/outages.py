"""Outages of what the pipeline stands on (S3, Redis), told apart from a file's own failures.

An unreachable dependency is nobody's file's fault: a message that hits one is put back (after
a pause, so there is no hot loop) without spending its delivery attempts, and the run resumes
when the dependency is back, instead of dead-lettering every job it touched meanwhile.
"""
from __future__ import annotations

import redis.exceptions
import urllib3.exceptions

WAIT_S = 5.0  # how long a message waits before it is put back during an outage

_OUTAGES = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    urllib3.exceptions.MaxRetryError,  # S3 unreachable or 5xx after the client's retries
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
)


class Unavailable(Exception):
    """Raise to say "a dependency is down": the message waits for it."""


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, (Unavailable, *_OUTAGES))
