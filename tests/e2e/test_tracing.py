"""Operators trace a run through OpenTelemetry: the services, as separate processes, export over
OTLP/HTTP to a receiver in the test, and one trace holds every service's spans of the run; with
`SCAIDRIVE_TRACE_PATHS` unset (this module's stack), no file name reaches the exporter."""
from __future__ import annotations

import json
import os
import secrets
import signal
import time

import pytest

from tests.e2e.helpers import found_in, new_connector, wait_parts_sent, write_random
from tests.e2e.test_two_way import put
from tests.fixtures.otlp import OtlpReceiver
from tests.fixtures.stack import Stack, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def otlp():
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def traced(s3, graph, smtp, otlp, tmp_path_factory):
    st = Stack(s3, tmp_path_factory.mktemp("traced"), graph, smtp,
               OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint, OTEL_BSP_SCHEDULE_DELAY="100",
               OTEL_METRIC_EXPORT_INTERVAL="500").start(transfer_workers=2)
    yield st
    st.stop()


def run_trace(otlp: OtlpReceiver, run_id: str, services: set[str], timeout: float = 30) -> list:
    """The spans of the trace whose root is this run's "sync run" span, once every service
    named has exported its part."""
    deadline = time.monotonic() + timeout
    while True:
        roots = [s for s in otlp.spans if s["name"] == "sync run"
                 and s["attributes"].get("run.id") == run_id]
        spans = otlp.trace(roots[0]["trace_id"]) if roots else []
        if services <= {s["service"] for s in spans}:
            return spans
        assert time.monotonic() < deadline, f"trace has {sorted({s['service'] for s in spans})}"
        time.sleep(0.2)


def ancestors(span: dict, by_id: dict) -> list[str]:
    names = []
    while span["parent"]:
        span = by_id[span["parent"]]  # KeyError: a parent that is not in the trace
        names.append(f"{span['service']}:{span['name']}")
    return names


def test_one_trace_per_run_across_every_service(traced, samba, s3, otlp):
    api = traced.api()
    samba.write_file("traced/a.txt", b"a")
    samba.write_file("traced/b.txt", b"b")
    cid = new_connector(api, samba, "traced", "traced", sync_mode="two_way",
                        admin_emails=["ops@example.com"])["id"]
    wait_run(api, cid)
    samba.write_file("traced/a.txt", b"edited on the share")
    put(s3, "traced", "a.txt", b"edited in ScaiDrive, differently")
    samba.write_file("traced/c.txt", b"new")
    view = sync_and_wait(api, cid)
    run_id = view["status"]["run"]["run_id"]
    assert view["status"]["progress"]["files_conflicted"] == 1

    spans = run_trace(otlp, run_id, {f"scaidrive-{s}" for s in
                                     ("scanner", "identity", "transfer",
                                      "conflicts")})
    by_id = {s["span_id"]: s for s in spans}
    (root,) = [s for s in spans if s["parent"] is None]
    # Begun by the scheduler, recorded by whichever service ended the run (the last job's).
    assert (root["service"], root["name"]) == ("scaidrive-transfer", "sync run")
    assert root["links"], "the run's root links to the API request that asked for it"
    # It covers the whole run (recorded at the end, under the ids chosen at the start), and
    # every other span of the run lies within it.
    # (The run's duration is kept to the millisecond: rounded up by as much as half of one.)
    took_ns = (view["status"]["last_duration_s"] - 0.0005) * 1e9
    assert root["end_ns"] - root["start_ns"] >= took_ns * 0.99, (root, took_ns)
    assert root["attributes"]["run.outcome"] == "success"
    assert all(root["start_ns"] <= s["start_ns"] for s in spans)
    # Every span is parented inside the trace, and the chain follows the pipeline.
    transfer = [s for s in spans if s["name"].startswith("transfer ")]
    assert {s["attributes"]["connector.id"] for s in transfer} == {cid}
    chain = ancestors(transfer[0], by_id)
    assert chain[-1] == "scaidrive-transfer:sync run"
    assert any(c.startswith("scaidrive-identity:") for c in chain)
    assert any(c.startswith("scaidrive-scanner:") for c in chain)
    conflict = [s for s in spans if s["service"] == "scaidrive-conflicts"]
    assert "scaidrive-transfer:transfer both_changed" in ancestors(conflict[0], by_id)
    for span in spans:
        ancestors(span, by_id)
    assert not any("file.path" in s["attributes"] for s in spans)  # paths stay out by default
    handled = [s for s in spans if s["name"].startswith("handle ")]
    assert handled and all(s["attributes"]["messaging.system"] == "rabbitmq" and
                           s["attributes"]["messaging.operation"] == "process" and
                           s["attributes"]["messaging.destination.name"].startswith(traced.ns)
                           for s in handled)
    assert {s["attributes"]["messaging.message.type"] for s in handled} >= {
        "ScanRequested", "FileChanges", "TransferBatch"}

    # Log lines of that run carry its trace id.
    logs = [json.loads(line) for line in traced.logs().splitlines() if line.startswith("{")]
    run_lines = [line for line in logs if line.get("run_id") == run_id]
    assert run_lines and all(line.get("trace_id") == root["trace_id"]
                             for line in run_lines if line["service"] == "scanner")


def test_metrics_per_connector(traced, samba, otlp):
    api = traced.api()
    samba.write_file("metered/x.txt", b"12345")
    cid = new_connector(api, samba, "metered", "metered")["id"]
    wait_run(api, cid)
    deadline = time.monotonic() + 30
    wanted = {"scaidrive.files", "scaidrive.transferred", "scaidrive.run.duration",
              "scaidrive.transfer.throughput"}
    while True:
        mine = [m for m in otlp.metrics if m["attributes"].get("connector.id") == cid]
        if wanted <= {m["name"] for m in mine}:
            break
        assert time.monotonic() < deadline, sorted({m["name"] for m in mine})
        time.sleep(0.3)
    sent = max(m["value"] for m in mine if m["name"] == "scaidrive.transferred")
    assert sent == 5


def exception_events(spans: list[dict]) -> list[dict]:
    return [e for s in spans for e in s["events"] if e["name"] == "exception"]


def test_no_file_name_reaches_the_trace_exporter(traced, samba, otlp):
    """A file the service account cannot read (smbprotocol's error names it, with the share's
    UNC path) and a folder it cannot list: the run records both as per-file failures, and no
    name of the connector's tree is in any export: span names, attributes, status messages,
    events (recorded exceptions: message, stack trace, chained exceptions)."""
    api, tag = traced.api(), secrets.token_hex(3)
    folder = f"privacy-{tag}"
    names = {"denied file": f"confidential-{tag}.txt", "denied folder": f"locked-{tag}",
             "synced file": f"payroll-{tag}.txt", "synced folder": f"board-{tag}",
             "synced nested file": f"minutes-{tag}.txt"}
    samba.write_file(f"{folder}/{names['synced file']}", b"synced")
    samba.write_file(f"{folder}/{names['synced folder']}/{names['synced nested file']}", b"too")
    denied = samba.write_file(f"{folder}/{names['denied file']}", b"alice only", owner="alice")
    os.chmod(denied, 0o600)
    samba.make_unreadable_dir(f"{folder}/{names['denied folder']}")
    cid = new_connector(api, samba, folder, folder)["id"]
    view = wait_run(api, cid)
    run_id = view["status"]["run"]["run_id"]
    assert view["status"]["run"]["outcome"] == "partial", view["status"]
    failures = api.get(f"/connectors/{cid}/failures", params={"run_id": run_id}).json()
    assert sorted((f["path"], f["cause"]) for f in failures) == sorted([
        (names["denied file"], "permission_denied"),
        (names["denied folder"], "permission_denied")])
    assert view["status"]["progress"]["files_transferred"] == 2

    # Not vacuous: the denied read was recorded on its transfer span, as an exception event.
    spans = run_trace(otlp, run_id, {"scaidrive-transfer"})
    deadline = time.monotonic() + 30
    while not exception_events(spans):
        assert time.monotonic() < deadline, "no exception event exported for the denied read"
        time.sleep(0.2)
        spans = run_trace(otlp, run_id, {"scaidrive-transfer"})
    (event,) = exception_events(spans)
    assert event["attributes"]["exception.type"] == "shared.errors.PermissionDenied"
    assert event["attributes"]["exception.scrubbed"] is True
    assert "Traceback" in event["attributes"]["exception.stacktrace"]
    assert [s["status"]["message"] for s in spans if s["events"]] == ["permission_denied"]

    time.sleep(1)  # the last spans are exported (100 ms batches)
    exports = otlp.exports()
    assert any(run_id in e for e in exports)  # the grep sees this run's spans
    places = {f"OTLP export {i}": e for i, e in enumerate(exports)}
    with otlp.lock:  # and as the receiver decoded them (names, attributes, events, status)
        places |= {f"span {s['span_id']}": json.dumps(s, default=str) for s in otlp.spans}
    assert found_in(names, places) == []


def test_an_upload_gone_on_with_after_a_killed_worker_shows_in_its_trace_and_metrics(
        traced, samba, s3, otlp):
    """What a killed worker had sent and the next one did not send again: the transfer span's
    `upload.resumed_at` and the `scaidrive.upload.resumed` bytes of the connector."""
    mib = 1024 * 1024
    write_random(samba.share_dir / "resumed", "big.bin", 30 * mib)
    for label in traced.workers()[1:]:
        traced.kill(label, signal.SIGTERM)  # one worker: the one killed holds the job
    api = traced.api()
    cid = new_connector(api, samba, "resumed", "resumed", bandwidth_limit=10 * mib)["id"]
    sent = wait_parts_sent(s3.client(), "resumed", "big.bin", 2)
    traced.kill(traced.workers()[0])
    traced.spawn("transfer")
    traced.spawn("transfer")
    assert wait_run(api, cid, timeout=180)["status"]["run"]["outcome"] == "success"
    deadline = time.monotonic() + 30
    while True:
        resumed = [s["attributes"]["upload.resumed_at"] for s in otlp.spans
                   if s["attributes"].get("connector.id") == cid
                   and "upload.resumed_at" in s["attributes"]]
        counted = [m["value"] for m in otlp.metrics if m["name"] == "scaidrive.upload.resumed"
                   and m["attributes"].get("connector.id") == cid]
        if resumed and counted:
            break
        assert time.monotonic() < deadline, (resumed, counted)
        time.sleep(0.3)
    assert resumed[0] >= sent * 5 * mib  # the stack's part size
    assert max(counted) == resumed[0]
