"""The run's root span, covering the whole run although the run begins in one process (the
scheduler, `begin`) and ends in another (whichever closes it: a transfer worker, the scanner,
the scheduler; `end`).

A span cannot stay open across processes, so the root is recorded at the end, with the ids
chosen at the beginning: `begin` draws a trace id and a span id and returns the context that
the run's messages carry (every service's spans descend from that span id) and the ids as text
to keep with the run (in Redis); `end` records the span under exactly those ids, from the
run's start to its end, with the link to what asked for the run. The provider's id generator
(`RunIds`, installed by telemetry.setup) hands out the chosen ids for that one span and random
ones otherwise.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, TraceFlags

tracer = trace.get_tracer("scaidrive.run")
_chosen: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "run_span_ids", default=None)
_random = RandomIdGenerator()
NAME = "sync run"


class RunIds(IdGenerator):
    """Random ids, except the chosen ones for the span `end` records."""

    def generate_trace_id(self) -> int:
        chosen = _chosen.get()
        return chosen[0] if chosen else _random.generate_trace_id()

    def generate_span_id(self) -> int:
        chosen = _chosen.get()
        return chosen[1] if chosen else _random.generate_span_id()


def begin(cause: SpanContext | None) -> tuple[Context, dict[str, str]]:
    """(the context the run's work runs in, what to keep with the run to `end` it)."""
    trace_id, span_id = _random.generate_trace_id(), _random.generate_span_id()
    root = SpanContext(trace_id, span_id, is_remote=False,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED))
    kept = {"trace_root": f"{trace_id:032x}-{span_id:016x}"}
    if cause is not None and cause.is_valid:
        kept["trace_cause"] = f"{cause.trace_id:032x}-{cause.span_id:016x}"
    return trace.set_span_in_context(NonRecordingSpan(root), Context()), kept


def end(kept: dict[str, str], start_s: float, end_s: float, attributes: dict,
        error: str | None = None) -> None:
    """Record the root span of a run `begin` started (nothing if it kept no ids: a run begun
    before this was deployed)."""
    ids = _parse(kept.get("trace_root"))
    if ids is None:
        return
    cause = _parse(kept.get("trace_cause"))
    links = [Link(SpanContext(cause[0], cause[1], is_remote=True))] if cause else None
    with _ids(ids):
        span = tracer.start_span(NAME, context=Context(), links=links, attributes=attributes,
                                 start_time=int(start_s * 1e9))
    if error:
        span.set_status(trace.StatusCode.ERROR, "run failed")
    span.end(end_time=int(end_s * 1e9))


@contextlib.contextmanager
def _ids(ids: tuple[int, int]) -> Iterator[None]:
    token = _chosen.set(ids)
    try:
        yield
    finally:
        _chosen.reset(token)


def _parse(text: str | None) -> tuple[int, int] | None:
    if not text or "-" not in text:
        return None
    trace_hex, span_hex = text.split("-", 1)
    return int(trace_hex, 16), int(span_hex, 16)
