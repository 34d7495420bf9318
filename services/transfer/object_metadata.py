"""The metadata a transfer writes on an object: the original name and path exactly as the
source spells them (the key follows the path), the source's mtime and content hash, and who owns
it in ScaiDrive and how that was decided."""
from __future__ import annotations

from shared.contracts import TransferJob
from shared.sync.keys import metadata_value
from shared.sync.model import Versioned


def object_metadata(job: TransferJob, entry: Versioned) -> dict[str, str]:
    """The object's metadata for `job`'s path, of the source version `entry`."""
    meta = {"source-path": metadata_value(job.path),
            "source-name": metadata_value(job.path.rsplit("/", 1)[-1]),
            "source-mtime-ns": str(entry.mtime_ns)}
    if entry.content_tag:
        meta["source-content-hash"] = metadata_value(entry.content_tag)
    if job.owner:
        meta["scaidrive-owner"] = metadata_value(job.owner.user_id)
        meta["scaidrive-owner-mapping"] = job.owner.method
        if job.owner.source_principal:
            meta["source-owner"] = metadata_value(job.owner.source_principal)
    return meta
