"""How long a Graph call waits when Microsoft 365 throttles it (429, 503, 504), and the hold
every call of a session respects: a call's `CallBudget` (its waits and the time its throttled
attempts took, at most `max_wait_s`, then Transient naming the file) and the moment the
session's last Retry-After ends (`Hold.resume_at`), before which none of its calls sends:
requests sent while throttled still count against the tenant's limits.

Imported by `graph` (the session), which it sees only as a `Hold`: nothing here reaches back.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from shared import errors
from shared.sources.sharepoint.graph_errors import retry_after

log = logging.getLogger(__name__)

THROTTLED = {429, 503, 504}


class Hold(Protocol):
    """What a budget needs of its session: the end of the last Retry-After any of its calls
    was given, and its clock and sleep (tests inject both)."""

    resume_at: float
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]


class CallBudget:
    """The throttling one call may wait out in total before it gives up as Transient: our own
    waits plus the time its throttled attempts took. A Retry-After it is given holds back the
    session's other calls until the same moment."""

    def __init__(self, hold: Hold, path: str | None, max_wait_s: float):
        self.hold, self.path, self.max_wait_s = hold, path, max_wait_s
        self.waited, self.attempt = 0.0, 0
        self.until = 0.0  # the session's clock: the end of this call's own last wait

    async def gate(self) -> None:
        """Wait out a Retry-After another call of the session was given (not this call's
        own: it waited already)."""
        if self.hold.resume_at > self.until:
            self.until = self.hold.resume_at
            if (delay := self.until - self.hold.clock()) > 0:
                await self.hold.sleep(delay)

    async def wait(self, headers: Mapping[str, str] | None, status: int,
                   attempt_s: float = 0.0) -> None:
        self.attempt += 1
        self.waited += attempt_s
        delay = retry_after(headers, self.attempt)
        if self.waited + delay > self.max_wait_s:
            raise errors.Transient(
                f"Microsoft 365 is throttling ({status}, Retry-After {delay:.0f} s) beyond the "
                f"{self.max_wait_s:.0f} s this call may wait", self.path)
        log.info("Graph throttled (%s): waiting %.1f s", status, delay)
        self.waited += delay
        self.until = self.hold.clock() + delay
        self.hold.resume_at = max(self.hold.resume_at, self.until)
        await self.hold.sleep(delay)
