"""Open sources kept between jobs and runs: one per connector and config version, so one SMB
session (or Graph session) serves a connector's transfers and its next scans instead of a new
logon each time. New credentials (a new config version) never reuse the old session. `trim`
closes the least recently used past `max_open`, sparing those in use, so a process serving
thousands of connectors holds about as many sessions as it is actively using."""
from __future__ import annotations

import threading
from collections import OrderedDict

from shared.config.connector_model import Connector
from shared.config.secrets import SecretBox
from shared.config.settings import Settings
from shared.sources.base import Source
from shared.sources.factory import open_source

MAX_OPEN = 256


class Sources:
    """One source per connector and config version."""

    def __init__(self, box: SecretBox, settings: Settings, max_open: int = MAX_OPEN):
        self.box = box
        self.settings = settings
        self.max_open = max_open
        self._by_id: OrderedDict[str, tuple[int, Source]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, c: Connector) -> Source:
        with self._lock:
            cached = self._by_id.get(c.id)
            if cached and cached[0] == c.config_version:
                self._by_id.move_to_end(c.id)
                return cached[1]
            if cached:
                cached[1].close()  # new credentials: never reuse the old session
            source = open_source(c, self.box, self.settings)
            self._by_id[c.id] = (c.config_version, source)
            return source

    def trim(self, in_use: set[str]) -> None:
        """Close the least recently used sources past `max_open`, except those in use."""
        with self._lock:
            surplus = len(self._by_id) - self.max_open
            idle = [cid for cid in self._by_id if cid not in in_use][:max(surplus, 0)]
            closing = [self._by_id.pop(cid)[1] for cid in idle]
        for source in closing:
            source.close()

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._by_id)

    def drop(self, cid: str) -> None:
        """Close a connector's source (deleted, or its credentials refused)."""
        with self._lock:
            cached = self._by_id.pop(cid, None)
        if cached:
            cached[1].close()

    def close(self) -> None:
        with self._lock:
            cached, self._by_id = list(self._by_id.values()), OrderedDict()
        for _version, source in cached:
            source.close()
