"""Message contracts: the only thing the services share about each other.

Each message is a pydantic model with a schema version; its class name travels as the AMQP
`type` property, so a consumer can refuse what it does not know (dead-letter, not crash-loop).
Bodies never hold secrets: services read credentials from the encrypted connector store.
"""
from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1] = SCHEMA_VERSION
    registry: ClassVar[dict[str, type["Contract"]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Contract.registry[cls.__name__] = cls


class UnknownMessage(ValueError):
    """A body that is not a contract this code knows: never retried."""


def decode(type_name: str | None, body: bytes) -> Contract:
    model = Contract.registry.get(type_name or "")
    if model is None:
        raise UnknownMessage(f"unknown message type {type_name!r}")
    return model.model_validate_json(body)


# --- commands -------------------------------------------------------------------------------

class RunRequested(Contract):
    """Admin pressed 'sync now': the scheduler decides whether a run can start."""

    connector_id: str
    requested_at: datetime = Field(default_factory=utcnow)


class ScanRequested(Contract):
    """The scheduler holds the connector's lease for this run: list and publish changes."""

    connector_id: str
    run_id: str
    reason: Literal["schedule", "manual"] = "schedule"
    requested_at: datetime = Field(default_factory=utcnow)


# --- change flow: scanner -> identity -> transfer -------------------------------------------

class ChangeKind(StrEnum):
    CREATED = "created"
    MODIFIED = "modified"
    DELETED = "deleted"
    MOVED = "moved"  # same file id at a new path, content unchanged: copied inside the bucket
    REPAIRED = "repaired"  # indexed but missing or damaged in the bucket: sent again
    RELABELED = "relabeled"  # unchanged, but its owner mapping changed: new metadata, same bytes


class FileVersion(BaseModel):
    model_config = ConfigDict(frozen=True)
    size: int = Field(ge=0)
    mtime_ns: int
    file_id: str | None = None
    content_tag: str | None = None  # the backend's content hash, where it has one


class Owner(BaseModel):
    """Who the file belongs to in ScaiDrive, and how that was decided."""

    model_config = ConfigDict(frozen=True)
    user_id: str
    source_principal: str | None = None
    method: Literal["table", "email", "name", "system_owner"] = "system_owner"
    score: float | None = None
    degraded: bool = False  # the directory was unreachable: last known mapping or system owner


class FileChanged(Contract):
    connector_id: str
    run_id: str
    job_id: str  # unique per run and path: the idempotency key of the job
    kind: ChangeKind
    path: str
    from_path: str | None = None  # for MOVED
    version: FileVersion | None = None  # the source version seen by the scan (None for DELETED)
    owner_principal: str | None = None


class TransferJob(Contract):
    connector_id: str
    run_id: str
    job_id: str
    kind: ChangeKind
    path: str
    from_path: str | None = None
    version: FileVersion | None = None
    owner: Owner | None = None


# --- platform events ------------------------------------------------------------------------

class RunCounts(BaseModel):
    files_scanned: int = 0
    files_transferred: int = 0
    files_moved: int = 0
    files_deleted: int = 0
    files_errored: int = 0
    files_skipped: int = 0
    files_relabeled: int = 0
    bytes_transferred: int = 0


class SyncCompleted(Contract):
    """Published on the platform events exchange as `sync.completed`."""

    event: Literal["sync.completed"] = "sync.completed"
    connector_id: str
    run_id: str
    outcome: Literal["success", "partial", "failed"]
    started_at: datetime
    finished_at: datetime
    duration_s: float
    counts: RunCounts
    error: str | None = None


class ConnectorAuthFailed(Contract):
    """Published as `connector.auth_failed` (and written to the audit log) when the source
    refuses the connector's credentials (a revoked or expired secret): its runs stop until an
    admin updates them."""

    event: Literal["connector.auth_failed"] = "connector.auth_failed"
    connector_id: str
    connector_name: str
    kind: Literal["smb", "sharepoint"]
    run_id: str | None = None
    error: str  # the source's reason (e.g. an AADSTS code), never the secret
    at: datetime = Field(default_factory=utcnow)
