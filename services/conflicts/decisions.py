"""The conflict service's decisions: what an automatic policy picks, the job that applies a
decision, the conflict as it was detected (rebuilt from its record), and the AMQP message id
of a conflict's platform event, by which consumers recognise a copy sent again."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

from shared.app.runtime import Runtime
from shared.contracts import (
    ChangeKind,
    ConflictDetected,
    FileVersion,
    SideVersion,
    TransferJob,
    Winner,
)


@overload
def utc(when: datetime) -> datetime: ...


@overload
def utc(when: datetime | None) -> datetime | None: ...


def utc(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


def policy_winner(policy: str, source: SideVersion, scaidrive: SideVersion) -> Winner | None:
    """The winner an automatic policy picks; None for `manual` (an admin decides).
    `newer`: the later mtime wins; a tie, or no mtime on the ScaiDrive side, keeps the source."""
    if policy == "source_wins":
        return "source"
    if policy == "scaidrive_wins":
        return "scaidrive"
    if policy == "newer":
        src, dst = utc(source.mtime), utc(scaidrive.mtime)
        if dst is not None and (src is None or dst > src):
            return "scaidrive"
        return "source"
    return None


def event_id(event: str, conflict_id: str) -> str:
    """The AMQP message id of a conflict's platform event (`conflict.detected:<id>`): the same
    for every copy, so a consumer keeps the first and drops the rest."""
    return f"{event}:{conflict_id}"


def detection(record: dict[str, Any]) -> ConflictDetected:
    """The `ConflictDetected` a record was made from (published as `conflict.detected`)."""
    return ConflictDetected(
        conflict_id=record["id"], connector_id=record["connector_id"],
        connector_name=record["connector_name"], path=record["path"],
        source=SideVersion.model_validate(record["source"]),
        scaidrive=SideVersion.model_validate(record["scaidrive"]),
        source_version=FileVersion.model_validate(record["source_version"]),
        policy=record["policy"], detected_at=datetime.fromisoformat(record["detected_at"]))


def transfer_job(record: dict) -> TransferJob:
    """The job that applies a resolved conflict's decision."""
    return TransferJob(
        kind=ChangeKind.RESOLVED, connector_id=record["connector_id"],
        run_id=f"conflict-{record['id']}", job_id=record["id"], path=record["path"],
        version=FileVersion.model_validate(record["source_version"]),
        target_etag=record["scaidrive"].get("etag"), conflict_id=record["id"],
        winner=record["winner"])


async def apply(rt: Runtime, record: dict) -> None:
    """Send the decision to the connector's transfer queue (the record's winner counts, not a
    message's: the first resolve won). The transfer worker checks that it is not stale, then
    applies it and announces `conflict.resolved`, or supersedes it. Sent again after a crash,
    it is applied once (the worker's own once-flag)."""
    cid = record["connector_id"]
    await rt.broker.publish_work("transfer", transfer_job(record), "main", cid)
