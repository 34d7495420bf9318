"""Message contracts: the only thing the services share about each other.

Each message is a pydantic model with a schema version; its class name travels as the AMQP
`type` property, so a consumer can refuse what it does not know (dead-letter, not crash-loop).
Bodies never hold secrets: services read credentials from the encrypted connector store.
"""
from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Final = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1] = SCHEMA_VERSION
    registry: ClassVar[dict[str, type[Contract]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
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

ScanReason = Literal["schedule", "manual"]


class RunRequested(Contract):
    """Admin pressed 'sync now': the scheduler decides whether a run can start."""

    connector_id: str
    requested_at: datetime = Field(default_factory=utcnow)


class ScanRequested(Contract):
    """The scheduler holds the connector's lease for this run: list and publish changes."""

    connector_id: str
    run_id: str
    reason: ScanReason = "schedule"
    requested_at: datetime = Field(default_factory=utcnow)


# --- change flow: scanner -> identity -> transfer -------------------------------------------

class ChangeKind(StrEnum):
    CREATED = "created"
    MODIFIED = "modified"
    DELETED = "deleted"
    MOVED = "moved"  # same file id at a new path, content unchanged: copied inside the bucket
    REPAIRED = "repaired"  # indexed but missing or damaged in the bucket: sent again
    RELABELED = "relabeled"  # unchanged, but its owner mapping changed: new metadata, same bytes
    # Unchanged by its version, but that version was read within a timestamp tick of its last
    # write (`shared.sync.model.racily_clean`): its bytes are compared with the object's and
    # sent only if they differ. Added within schema version 1 (an older consumer dead-letters
    # the unknown kind; it never misreads it).
    RECHECKED = "rechecked"
    # Two-way connectors only:
    PUSHED = "pushed"  # changed in ScaiDrive: written back to the source
    DELETED_IN_SCAIDRIVE = "deleted_in_scaidrive"  # deleted in ScaiDrive: deleted at the source
    # Renamed in ScaiDrive (same etag at a new path): renamed at the source, no bytes sent.
    # `from_path` is the old path, `version` the source's version there (the move's condition).
    # Added within schema version 1, as the other two-way kinds were: an older consumer refuses
    # the unknown kind (dead letter), it never misreads it.
    MOVED_IN_SCAIDRIVE = "moved_in_scaidrive"
    BOTH_CHANGED = "both_changed"  # changed on both sides: compared, then recorded or a conflict
    RESOLVED = "resolved"  # a conflict decision (an admin's or a policy's), applied


class FileVersion(BaseModel):
    model_config = ConfigDict(frozen=True)
    size: int = Field(ge=0)
    mtime_ns: int
    file_id: str | None = None
    content_tag: str | None = None  # the backend's content hash, where it has one
    change_ns: int | None = None  # when the file last changed in any way (SMB's ChangeTime)


OwnerMethod = Literal["table", "email", "name", "system_owner"]


class Owner(BaseModel):
    """Who the file belongs to in ScaiDrive, and how that was decided."""

    model_config = ConfigDict(frozen=True)
    user_id: str
    source_principal: str | None = None
    method: OwnerMethod = "system_owner"
    score: float | None = None
    degraded: bool = False  # the directory was unreachable: last known mapping or system owner
    reason: str | None = None  # why the system owner, where nobody's account can own the file


class Change(BaseModel):
    """One file's change as the scan decided it (alone in `FileChanged`, or in `FileChanges`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    job_id: str  # unique per run and path: the idempotency key of the job
    kind: ChangeKind
    path: str
    from_path: str | None = None  # for MOVED and MOVED_IN_SCAIDRIVE: the old path
    version: FileVersion | None = None  # the source version seen by the scan (None for DELETED)
    owner_principal: str | None = None
    target_etag: str | None = None  # two-way: the ScaiDrive object's version seen by the scan


Lane = Literal["main", "bulk"]  # which of the stages' shared lanes (shared/messaging/lanes.py)


class FileChanged(Change, Contract):
    """A change sent on its own: a large file (its own transfer job, claimed while it runs)
    or a two-way push, comparison or deletion at the source."""

    connector_id: str
    run_id: str
    lane: Lane = "main"


class FileChanges(Contract):
    """Small files' changes sent together (up to `SCAIDRIVE_BATCH_FILES` files or
    `SCAIDRIVE_BATCH_MB` of content, in walk order, so a batch holds neighbouring folders).
    Each change keeps its own job id: it is counted, failed and skipped on its own."""

    connector_id: str
    run_id: str
    changes: list[Change] = Field(min_length=1)
    lane: Lane = "main"


Winner = Literal["source", "scaidrive", "keep_both"]
ConflictPolicy = Literal["manual", "newer", "source_wins", "scaidrive_wins"]


class Transfer(BaseModel):
    """One file's work with its owner decided (alone in `TransferJob`, or in `TransferBatch`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    job_id: str
    kind: ChangeKind
    path: str
    from_path: str | None = None
    version: FileVersion | None = None
    owner: Owner | None = None
    target_etag: str | None = None
    conflict_id: str | None = None  # RESOLVED: the conflict whose decision this applies
    winner: Winner | None = None  # RESOLVED


class TransferJob(Transfer, Contract):
    connector_id: str
    run_id: str
    lane: Lane = "main"


class TransferBatch(Contract):
    """Small files' transfers, moved by one worker with several in flight; each keeps its job
    id (a redelivered batch skips the files already in the index at that version)."""

    connector_id: str
    run_id: str
    transfers: list[Transfer] = Field(min_length=1)
    lane: Lane = "main"


# --- platform events ------------------------------------------------------------------------

class RunCounts(BaseModel):
    files_scanned: int = 0
    files_transferred: int = 0
    files_moved: int = 0
    files_deleted: int = 0
    files_errored: int = 0
    files_skipped: int = 0
    files_relabeled: int = 0
    files_conflicted: int = 0  # two-way: changed on both sides, handed to the conflict service
    bytes_transferred: int = 0


RunOutcome = Literal["success", "partial", "failed"]


class SyncCompleted(Contract):
    """Published on the platform events exchange as `sync.completed`."""

    event: Literal["sync.completed"] = "sync.completed"
    connector_id: str
    run_id: str
    outcome: RunOutcome
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


DeleteSide = Literal["source", "scaidrive"]  # the side a deletion would have been made on


class DeletesHeld(Contract):
    """Published as `connector.deletes_held` (and audited): a two-way run would have deleted
    more than the connector's `max_delete_percent` of one side's files, so it deleted none of
    them there; an admin approves or rejects the held deletions through the API."""

    event: Literal["connector.deletes_held"] = "connector.deletes_held"
    connector_id: str
    connector_name: str
    run_id: str
    side: DeleteSide  # where the files would have been deleted
    count: int
    total: int  # files on that side
    sample: list[str]  # the first paths, sorted
    at: datetime = Field(default_factory=utcnow)


# --- conflicts ------------------------------------------------------------------------------

class ShareQuotaWarning(Contract):
    """Published as `share.quota_warning` (and audited) when a share's usage reaches the
    warning line (90% of its quota), once per crossing: again only after it fell back below
    the clear line (85%). The connectors' admins are mailed (services/conflicts/alerts.py)."""

    event: Literal["share.quota_warning"] = "share.quota_warning"
    share: str
    usage_bytes: int
    quota_bytes: int
    percent: float  # usage_bytes / quota_bytes x 100, one decimal
    connector_ids: list[str]  # the connectors that sync into the share
    at: datetime = Field(default_factory=utcnow)  # when the crossing was seen


class SideVersion(BaseModel):
    """One side's version of a file in conflict."""

    model_config = ConfigDict(frozen=True)
    size: int = Field(ge=0)
    mtime: datetime | None = None
    editor: str | None = None  # who last changed it, where the side says
    etag: str | None = None  # the side's version tag (S3 etag; SharePoint eTag / content hash)


class ConflictDetected(Contract):
    """A file changed on both sides since the last sync, to different contents.

    Sent by the transfer worker to the conflict service (`{ns}.conflicts`), which records it,
    emails the connector's admins once and publishes it as `conflict.detected` on the platform
    events exchange. `conflict_id` is derived from the connector, path and both versions, so a
    redelivered or re-detected conflict is the same conflict."""

    event: Literal["conflict.detected"] = "conflict.detected"
    conflict_id: str
    connector_id: str
    connector_name: str
    path: str
    source: SideVersion
    scaidrive: SideVersion
    source_version: FileVersion  # the source version as listed (applied if the source wins)
    policy: ConflictPolicy = "manual"
    detected_at: datetime = Field(default_factory=utcnow)


class ConflictDecision(Contract):
    """The admin API (or a policy) picked a winner: sent to the conflict service."""

    conflict_id: str
    winner: Winner
    resolved_by: str
    decided_at: datetime = Field(default_factory=utcnow)


class ConflictResolved(Contract):
    """Published as `conflict.resolved` when the transfer worker applies a decision.

    It found both sides still holding the versions the conflict was detected with, and writes
    the winner next (a decision that turned out stale is `conflict.superseded` instead)."""

    event: Literal["conflict.resolved"] = "conflict.resolved"
    conflict_id: str
    connector_id: str
    path: str
    winner: Winner
    resolved_by: str  # the admin, or "policy:<name>"
    automatic: bool = False
    resolved_at: datetime = Field(default_factory=utcnow)


class ConflictSuperseded(Contract):
    """Published as `conflict.superseded` (and audited) when a decision turned out stale.

    A side changed after the conflict was detected, so the transfer worker applied nothing and
    overwrote nothing. The conflict reads `superseded` with this reason; its path is released,
    and the next run detects the conflict again with the versions as they are now."""

    event: Literal["conflict.superseded"] = "conflict.superseded"
    conflict_id: str
    connector_id: str
    path: str
    reason: str  # "the source version changed since detection" (or "the ScaiDrive version")
    winner: Winner  # the decision that was not applied
    resolved_by: str  # who made it: the admin, or "policy:<name>"
    superseded_at: datetime = Field(default_factory=utcnow)
