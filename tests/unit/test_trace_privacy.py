"""With `SCAIDRIVE_TRACE_PATHS` off, no file path leaves the process in a span: not through
`telemetry.record_error` (the record sites), nor through OpenTelemetry's own recording of an
exception escaping `start_as_current_span`, which the exporter's net rewrites. Real SDK
pipeline: a TracerProvider, the net around the SDK's in-memory exporter; a real smbprotocol
error mapped by the SMB source's own mapping, chained as in the services."""
from __future__ import annotations

import re

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from smbprotocol.exceptions import SMBOSError
from smbprotocol.header import NtStatus

from shared.errors import SyncError
from shared.observability import telemetry
from shared.observability.trace_privacy import REDACTED, PathFreeExporter, frames_only, scrub_status
from shared.sources.smb.ntstatus import to_sync_error

UNC = r"\\host\share\Project\confidential.txt"
SECRET = "confidential"


def _open(path: str) -> None:
    raise SMBOSError(NtStatus.STATUS_ACCESS_DENIED, path)


def read_denied() -> None:
    """As the SMB source does: smbprotocol's error, mapped, raised from it."""
    try:
        _open(UNC)
    except SMBOSError as exc:
        raise to_sync_error(exc, "Project/confidential.txt") from exc


def read_then_clean_up() -> None:
    """A second failure while handling the first (an implicit `__context__` chain)."""
    try:
        read_denied()
    except SyncError:
        raise RuntimeError(f"cleanup of {UNC} failed too")  # noqa: B904 - implicit chain wanted


@pytest.fixture
def pipeline(monkeypatch):
    """A tracer whose spans go through the net to memory; `paths(allowed)` sets the setting
    as `telemetry.setup` would, and without the net when paths are allowed."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()

    def paths(allowed: bool):
        monkeypatch.setattr(telemetry, "_trace_paths", allowed)
        exporter = memory if allowed else PathFreeExporter(memory)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider.get_tracer("test"), memory
    yield paths
    provider.shutdown()


def record_sites(tracer) -> None:
    """The three ways an error reaches a span: the helper on a SyncError (transfer, scanner),
    the helper on anything else (the broker), and an exception escaping its span."""
    with tracer.start_as_current_span("transfer upload") as span:
        try:
            read_denied()
        except SyncError as exc:
            telemetry.record_error(span, exc)
            span.set_status(StatusCode.ERROR, exc.cause)
    with tracer.start_as_current_span("handle transfer") as span:
        try:
            read_then_clean_up()
        except Exception as exc:
            telemetry.record_error(span, exc)
    with pytest.raises(RuntimeError):
        with tracer.start_as_current_span("escapes"):
            read_then_clean_up()


def exported_text(span: ReadableSpan) -> str:
    """Everything the span carries as text: name, status, attributes, events and theirs."""
    parts = [span.name, span.status.description or "", *map(str, span.attributes.items())]
    for event in span.events:
        parts += [event.name, *map(str, (event.attributes or {}).items())]
    return "\n".join(parts + [span.to_json()])


def by_name(memory: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in memory.get_finished_spans()}


def test_no_path_in_any_exported_span_when_paths_are_off(pipeline):
    tracer, memory = pipeline(False)
    record_sites(tracer)
    spans = by_name(memory)
    assert set(spans) == {"transfer upload", "handle transfer", "escapes"}
    leaks = [name for name, span in spans.items() if SECRET in exported_text(span)]
    assert leaks == []
    assert all(len(span.events) == 1 and span.events[0].name == "exception"
               for span in spans.values())  # recorded, just without the text


def test_the_helper_keeps_type_cause_and_frames_of_the_whole_chain(pipeline):
    tracer, memory = pipeline(False)
    record_sites(tracer)
    spans = by_name(memory)
    (sync,) = spans["transfer upload"].events
    assert sync.attributes["exception.type"] == "shared.errors.PermissionDenied"
    assert sync.attributes["exception.message"].startswith("permission_denied (")
    assert sync.attributes["exception.scrubbed"] is True
    assert spans["transfer upload"].status.description == "permission_denied"
    (other,) = spans["handle transfer"].events
    assert other.attributes["exception.message"] == "RuntimeError"  # no cause: the type only
    trace = other.attributes["exception.stacktrace"]
    # Oldest first, as Python prints it: smbprotocol's error, the mapped one, the cleanup's.
    assert trace.index("smbprotocol.exceptions.SMBOSError") \
        < trace.index("The above exception was the direct cause") \
        < trace.index("shared.errors.PermissionDenied") \
        < trace.index("During handling of the above exception") < trace.index("RuntimeError")
    for function in ("_open", "read_denied", "read_then_clean_up"):
        assert re.search(rf'File ".*test_trace_privacy.py", line \d+, in {function}\n', trace)


def test_the_net_rewrites_what_the_sdk_recorded_for_an_escaping_exception(pipeline):
    tracer, memory = pipeline(False)
    record_sites(tracer)
    escaped = by_name(memory)["escapes"]
    (event,) = escaped.events
    assert event.attributes["exception.type"] == "RuntimeError"
    assert event.attributes["exception.message"] == REDACTED  # the SDK's event, rewritten
    frames = event.attributes["exception.stacktrace"]
    assert ", in _open" in frames and ", in read_then_clean_up" in frames
    assert "Error" not in frames.replace("test_trace_privacy", "")  # no exception line kept
    assert escaped.status.status_code is StatusCode.ERROR
    assert escaped.status.description == "RuntimeError"  # was "RuntimeError: cleanup of ..."


def test_control_with_paths_allowed_the_path_is_traced(pipeline):
    """The same spans with SCAIDRIVE_TRACE_PATHS=true: the path is there, where the tests above
    found none (so they look where it would be)."""
    tracer, memory = pipeline(True)
    record_sites(tracer)
    spans = by_name(memory)
    assert all(SECRET in exported_text(span) for span in spans.values())
    (event,) = spans["transfer upload"].events
    assert UNC in event.attributes["exception.message"]
    assert "exception.scrubbed" not in event.attributes
    assert SECRET in spans["escapes"].status.description


def test_setup_puts_the_net_in_front_of_the_exporter_unless_paths_are_allowed(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    wrapped = telemetry.span_exporter_for(False)
    assert isinstance(wrapped, PathFreeExporter)
    assert isinstance(wrapped.inner, ConsoleSpanExporter)
    assert isinstance(telemetry.span_exporter_for(True), ConsoleSpanExporter)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert telemetry.span_exporter_for(False) is None


def test_an_exception_group_member_is_recorded_without_its_message(pipeline):
    tracer, memory = pipeline(False)
    with tracer.start_as_current_span("group") as span:
        try:
            raise ExceptionGroup("several", [RuntimeError(UNC), KeyError(UNC)])
        except ExceptionGroup as exc:
            telemetry.record_error(span, exc)
    (span,) = memory.get_finished_spans()
    trace = span.events[0].attributes["exception.stacktrace"]
    assert SECRET not in exported_text(span)
    assert "| RuntimeError" in trace and "| KeyError" in trace


@pytest.mark.parametrize("description,kept", [
    ("permission_denied", "permission_denied"),  # our set_status(ERROR, exc.cause)
    ("PermissionDenied: SMBOSError: ... '\\\\host\\share\\confidential.txt'", "PermissionDenied"),
    ("smbprotocol.exceptions.SMBOSError: '\\\\host\\confidential.txt'",
     "smbprotocol.exceptions.SMBOSError"),
    ("confidential.txt", REDACTED),  # not a cause, not "Type: message": redacted
    ("could not read \\\\host\\confidential.txt", REDACTED),
])
def test_status_descriptions(description, kept):
    assert scrub_status(Status(StatusCode.ERROR, description)).description == kept


def test_a_message_cannot_pass_text_off_as_a_frame():
    """A file name holding a newline and a frame-like line (Samba shares with `mangled names =
    no` can list such names): only frames of this host's source files are kept."""
    stacktrace = ('Traceback (most recent call last):\n'
                  f'  File "{__file__}", line 3, in read_denied\n'
                  '    source line\n'
                  "SMBOSError: 'confidential\n"
                  '  File "confidential.py", line 1, in confidential\n'
                  "'\n")
    assert frames_only(stacktrace) == ('Traceback (most recent call last):\n'
                                       f'  File "{__file__}", line 3, in read_denied\n')
    assert frames_only(f"Error: {UNC}\n") == REDACTED  # no frame at all: nothing kept
