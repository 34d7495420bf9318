"""Renames in two-way mode: which of a run's deletions and creations on one side are one file
moved there, so the other side renames it too instead of receiving its bytes again.

- Renamed at the source (`at_source`): an indexed path the source no longer lists, whose
  ScaiDrive object is still the indexed one, paired with a new source path that ScaiDrive does
  not hold, by the file id the backend keeps across renames (SMB's file id, SharePoint's item
  id) and unchanged content (`rules.move_key`, as the one-way decision pairs them).
- Renamed in ScaiDrive (`in_scaidrive`): an indexed path ScaiDrive no longer holds while the
  source still lists it unchanged, paired with a new ScaiDrive path the source does not hold,
  by the object's etag (S3's content hash: a copy keeps it) equal to the indexed one.

A pair is made only where exactly one old and exactly one new path share the key: identical
contents that could pair several ways stay deletions and creations (safe: nothing is lost, the
bytes travel again). Pure: the standard library and the pure core only.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping

from shared.sync.model import IndexRecord, SourceEntry
from shared.sync.rules import move_key


def unique_pairs(old: Mapping[str, Hashable], new: Mapping[str, Hashable]) -> dict[str, str]:
    """new path -> old path, for every key held by exactly one old and exactly one new path."""
    old_count, new_count = Counter(old.values()), Counter(new.values())
    by_key = {key: path for path, key in old.items() if old_count[key] == 1}
    return {path: by_key[key] for path, key in sorted(new.items())
            if new_count[key] == 1 and key in by_key}


def at_source(vanished: Iterable[str], created: Iterable[str],
              index: Mapping[str, IndexRecord],
              listed: Mapping[str, SourceEntry]) -> dict[str, str]:
    """new path -> old path of files renamed at the source. `vanished`: indexed paths the
    source no longer lists (its listing strong enough to say so) and ScaiDrive still holds
    unchanged; `created`: new source paths ScaiDrive does not hold."""
    return unique_pairs({p: move_key(index[p]) for p in vanished if index[p].file_id},
                        {p: move_key(listed[p]) for p in created if listed[p].file_id})


def in_scaidrive(vanished: Iterable[str], created: Iterable[str],
                 index: Mapping[str, IndexRecord], target: Mapping[str, str]) -> dict[str, str]:
    """new path -> old path of objects renamed in ScaiDrive. `vanished`: indexed paths gone
    from ScaiDrive whose source file is unchanged; `created`: new ScaiDrive paths the source
    does not hold (and can hold)."""
    return unique_pairs({p: _etag(index[p].etag) for p in vanished if index[p].etag},
                        {p: _etag(target[p]) for p in created if target[p]})


def _etag(etag: str | None) -> str:
    return (etag or "").strip('"')
