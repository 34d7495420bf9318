"""The transfer worker's open sources: one per connector and config version, so one SMB
connection cache (or Graph session) serves a connector's jobs, and new credentials never reuse
the old session."""
from __future__ import annotations

import threading

from shared.config.connector_model import Connector
from shared.config.secrets import SecretBox
from shared.config.settings import Settings
from shared.sources.base import Source
from shared.sources.factory import open_source


class Sources:
    """One source per connector and config version."""

    def __init__(self, box: SecretBox, settings: Settings):
        self.box = box
        self.settings = settings
        self._by_id: dict[str, tuple[int, Source]] = {}
        self._lock = threading.Lock()

    def get(self, c: Connector) -> Source:
        with self._lock:
            cached = self._by_id.get(c.id)
            if cached and cached[0] == c.config_version:
                return cached[1]
            if cached:
                cached[1].close()  # new credentials: never reuse the old session
            source = open_source(c, self.box, self.settings)
            self._by_id[c.id] = (c.config_version, source)
            return source

    def drop(self, cid: str) -> None:
        with self._lock:
            cached = self._by_id.pop(cid, None)
        if cached:
            cached[1].close()
