"""What the parts of `SmbSource` (listing, owners, writing) use of it, declared once: they are
mixed into `source.SmbSource`, which defines every member below."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from shared import errors
from shared.sync.model import SourceEntry

T = TypeVar("T")


class SmbPlumbing:
    base: str  # the connector's folder inside the share, '\\'-separated
    chunk_size: int

    def _unc(self, path: str = "") -> str:
        raise NotImplementedError

    def _kw(self) -> dict[str, Any]:
        raise NotImplementedError

    def _fail(self, exc: BaseException, path: str | None) -> errors.SyncError:
        raise NotImplementedError

    def _drop(self, log_off: bool = False) -> None:
        raise NotImplementedError

    def _call(self, path: str, fn: Callable[..., T], *args: Any, retry: bool = True,
              **kwargs: Any) -> T:
        raise NotImplementedError

    def stat(self, path: str) -> SourceEntry:
        raise NotImplementedError
