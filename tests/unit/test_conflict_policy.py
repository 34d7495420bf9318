"""The conflict service's pure parts: what an automatic policy picks, what admins are told."""
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from services.conflicts.handlers import policy_winner, render_email, transfer_job
from shared.config.settings import ConflictSettings
from shared.contracts import ChangeKind, ConflictDetected, FileVersion, SideVersion

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def side(mtime, **kw) -> SideVersion:
    return SideVersion(size=kw.pop("size", 10), mtime=mtime, **kw)


@pytest.mark.parametrize("source,scaidrive,winner", [
    (T0, T0 + timedelta(seconds=1), "scaidrive"),  # later mtime wins
    (T0 + timedelta(seconds=1), T0, "source"),
    (T0, T0, "source"),  # a tie keeps the source
    (T0, None, "source"),  # an unknown mtime never wins
    (None, T0, "scaidrive"),
    (None, None, "source"),
    (T0.replace(tzinfo=None), T0 + timedelta(hours=1), "scaidrive"),  # naive = UTC
])
def test_newer_picks_the_later_mtime(source, scaidrive, winner):
    assert policy_winner("newer", side(source), side(scaidrive)) == winner


def test_fixed_policies_and_manual():
    a, b = side(T0 + timedelta(days=1)), side(T0)
    assert policy_winner("source_wins", side(T0), a) == "source"
    assert policy_winner("scaidrive_wins", a, b) == "scaidrive"
    assert policy_winner("manual", a, b) is None


def _conflict() -> ConflictDetected:
    return ConflictDetected(
        conflict_id="c0ffee", connector_id="abc123", connector_name="Finance",
        path="Reports/Q1 plan.xlsx",
        source=SideVersion(size=1234, mtime=T0, editor="alice@contoso.com", etag='"{A1},3"'),
        scaidrive=SideVersion(size=5678, mtime=T0 + timedelta(minutes=5), editor="u-bob",
                              etag="9f2e"),
        source_version=FileVersion(size=1234, mtime_ns=1, file_id="01ABC", content_tag="qx=="))


def test_email_holds_both_versions_the_link_and_the_api_call():
    settings = ConflictSettings(s3_access_key="a", s3_secret_key="b",
                                 secret_key=Fernet.generate_key().decode(),
                                console_url="https://console.test/")
    mail = render_email(_conflict(), ["ops@contoso.com", "it@contoso.com"], settings)
    body = mail.get_content()
    assert mail["To"] == "ops@contoso.com, it@contoso.com"
    assert "Reports/Q1 plan.xlsx" in mail["Subject"] and "Finance" in mail["Subject"]
    for text in ("1234 bytes", "5678 bytes", "alice@contoso.com", "u-bob", '"{A1},3"', "9f2e",
                 T0.isoformat(), (T0 + timedelta(minutes=5)).isoformat(),
                 "https://console.test/connectors/abc123",
                 "POST /api/v1/conflicts/c0ffee/resolve"):
        assert text in body, text
    assert body.index("Source version") < body.index("ScaiDrive version")


def test_decision_becomes_a_resolved_transfer_job():
    msg = _conflict()
    record = {"id": msg.conflict_id, "connector_id": msg.connector_id, "path": msg.path,
              "source_version": msg.source_version.model_dump(),
              "scaidrive": msg.scaidrive.model_dump(), "winner": "keep_both"}
    job = transfer_job(record)
    assert (job.kind, job.run_id, job.job_id, job.conflict_id) == \
        (ChangeKind.RESOLVED, "conflict-c0ffee", "c0ffee", "c0ffee")
    assert job.version == msg.source_version and job.target_etag == "9f2e"
    assert job.winner == "keep_both" and job.connector_id == "abc123"
