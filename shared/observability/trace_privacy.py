"""Traces without file paths, for `SCAIDRIVE_TRACE_PATHS` off (the default).

An exception's message names the file it is about (smbprotocol: `... STATUS_ACCESS_DENIED:
'\\\\host\\share\\Project\\report.docx'`), and OpenTelemetry copies it into the span: the
"exception" event's `exception.message` and `exception.stacktrace` (with every chained
exception's message), and, for an exception escaping `start_as_current_span`, the status
description `Type: message`. Two layers keep names out of what is exported:

- `exception_attributes`: what `telemetry.record_error` records instead of the SDK's event: the
  type, a message without the exception's text (the failure's cause for our `SyncError`s), the
  frames of each exception of the chain; marked `exception.scrubbed`.
- `PathFreeExporter`: the span exporter's wrapper. Whatever was recorded another way (the SDK's
  escape path, a library's instrumentation) is rewritten before it leaves the process: the
  message redacted, the stack trace cut to its frames, a `Type: message` status cut to the type.
"""
from __future__ import annotations

import functools
import os
import re
import traceback
from collections.abc import Sequence
from types import TracebackType

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status
from opentelemetry.util.types import AttributeValue

from shared.errors import SyncError

SCRUBBED = "exception.scrubbed"
REDACTED = "[redacted: SCAIDRIVE_TRACE_PATHS is off]"
WITHHELD = "details withheld: SCAIDRIVE_TRACE_PATHS is off"
_HEADER = "Traceback (most recent call last):"
_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"
_FRAME = '  File "{}", line {}, in {}'


def type_name(exc_type: type) -> str:
    """As the SDK names it: `module.Qualname`, builtins bare."""
    module, qualname = exc_type.__module__, exc_type.__qualname__
    return f"{module}.{qualname}" if module and module != "builtins" else qualname


# --- recording: the helper's event ---------------------------------------------------------------

def exception_attributes(exc: BaseException, cause: str | None = None
                         ) -> dict[str, AttributeValue]:
    """An "exception" event's attributes with no exception's message in them."""
    if cause is None and isinstance(exc, SyncError):
        cause = exc.cause
    return {"exception.type": type_name(type(exc)),
            "exception.message": f"{cause} ({WITHHELD})" if cause else type_name(type(exc)),
            "exception.stacktrace": "\n".join(_chain(exc, set())) + "\n",
            "exception.escaped": "False", SCRUBBED: True}


def _chain(exc: BaseException, seen: set[int]) -> list[str]:
    """Python's traceback text of `exc` and what it was raised from, oldest first, with each
    exception's type but not its message (nor notes, nor source lines)."""
    seen.add(id(exc))
    lines: list[str] = []
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        lines += [*_chain(cause, seen), "", _CAUSE, ""]
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        lines += [*_chain(context, seen), "", _CONTEXT, ""]
    lines += [*_frames(exc.__traceback__), type_name(type(exc))]
    if isinstance(exc, BaseExceptionGroup):
        for i, member in enumerate(exc.exceptions, 1):
            lines += [f"  +-- {i} --", *(f"  | {line}" for line in _chain(member, seen))]
    return lines


def _frames(tb: TracebackType | None) -> list[str]:
    if tb is None:
        return []
    stack = traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False)
    return [_HEADER, *(_FRAME.format(f.filename, f.lineno, f.name) for f in stack)]


# --- exporting: the safety net -------------------------------------------------------------------

class PathFreeExporter(SpanExporter):
    """Wraps a span exporter: each span goes on with its exception events and status rewritten
    (a new `ReadableSpan`; spans with nothing to rewrite go on as they are)."""

    def __init__(self, inner: SpanExporter):
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([scrub_span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def scrub_span(span: ReadableSpan) -> ReadableSpan:
    events = tuple(scrub_event(event) for event in span.events)
    status = scrub_status(span.status)
    if status is span.status and all(a is b for a, b in zip(events, span.events, strict=True)):
        return span
    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource,
        attributes=span.attributes, events=events, links=span.links, kind=span.kind,
        status=status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope)


def scrub_event(event: Event) -> Event:
    """An "exception" event not recorded by `exception_attributes`, without its message."""
    attributes = dict(event.attributes or {})
    if event.name != "exception" or attributes.get(SCRUBBED) is True:
        return event
    if "exception.message" in attributes:
        attributes["exception.message"] = REDACTED
    if "exception.stacktrace" in attributes:
        attributes["exception.stacktrace"] = frames_only(str(attributes["exception.stacktrace"]))
    attributes[SCRUBBED] = True
    return Event(event.name, attributes, event.timestamp)


_TYPE_PREFIX = re.compile(r"([A-Za-z_][\w.]*): ")
_CAUSE_LIKE = re.compile(r"[a-z][a-z0-9_]*")
_TRACE_LINE = re.compile(r'[ |+\-\d]*File "(?P<file>[^"\n]+)", line (?P<line>\d+), '
                         r'in (?P<func>[\w<>.]+)')
_FIXED_LINES = (_HEADER, _CAUSE, _CONTEXT)


def scrub_status(status: Status) -> Status:
    """A status description is kept when it is a cause (`permission_denied`); `Type: message`
    (the SDK's, for an exception escaping its span) is cut to the type; anything else redacted."""
    description = status.description
    if not description or _CAUSE_LIKE.fullmatch(description):
        return status
    typed = _TYPE_PREFIX.match(description)
    return Status(status.status_code, typed.group(1) if typed else REDACTED)


def frames_only(stacktrace: str) -> str:
    """The frames of a formatted traceback (file, line, function) and its fixed headers: every
    other line (exception messages, notes, source lines) dropped. A frame counts only if its
    file is a source file of this host, so a message cannot pass text off as a frame."""
    kept = []
    for line in stacktrace.splitlines():
        text = line.strip(" |")
        frame = _TRACE_LINE.fullmatch(line)
        if text in _FIXED_LINES:
            kept.append(text)
        elif frame and _local_source(frame["file"]):
            kept.append(_FRAME.format(frame["file"], frame["line"], frame["func"]))
    return "\n".join(kept) + "\n" if any(k.startswith("  File") for k in kept) else REDACTED


@functools.lru_cache(maxsize=4096)
def _local_source(path: str) -> bool:
    return path.endswith(".py") and os.path.isfile(path)
