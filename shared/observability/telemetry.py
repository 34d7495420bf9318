"""Tracing, metrics and logs. W3C trace context rides in AMQP headers so one run is one trace.

Export follows the standard OpenTelemetry variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (or the
per-signal `..._TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`) turns OTLP/HTTP export on, and
`OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` may say `otlp`, `console` or `none`. With
nothing configured, spans are created and dropped and metric instruments are no-ops.

File paths reach spans only with `SCAIDRIVE_TRACE_PATHS` (`setup(..., trace_paths=True)`):
otherwise errors are recorded without their messages (`record_error`) and the exporter is
wrapped in `trace_privacy.PathFreeExporter`, which rewrites whatever was recorded another way.
"""
from __future__ import annotations

import json
import logging
import os
import sys

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from shared.observability import run_span, trace_privacy

_PROVIDERS: list = []  # flushed on shutdown
_trace_paths = False  # SCAIDRIVE_TRACE_PATHS, as given to setup: may file paths be traced?


def _exporter_choice(signal: str) -> str:
    """otlp | console | none, from OTEL_<SIGNAL>_EXPORTER, else from whether an endpoint is set."""
    chosen = os.environ.get(f"OTEL_{signal}_EXPORTER", "").strip().lower()
    if chosen:
        return chosen.split(",")[0]
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or \
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    return "otlp" if endpoint else "none"


def setup(service: str, level: str = "INFO", trace_paths: bool = False) -> trace.Tracer:
    """Tracing, metrics and JSON logs for this process; `trace_paths`: the setting
    `SCAIDRIVE_TRACE_PATHS` (file paths, and the exception messages naming them, on spans)."""
    global _trace_paths
    _trace_paths = trace_paths
    resource = Resource.create({"service.name": f"scaidrive-{service}",
                                "service.namespace": os.environ.get("SCAIDRIVE_NAMESPACE",
                                                                    "scaidrive")})
    # RunIds: a run's root span is recorded at its end under the ids chosen at its start
    # (shared/observability/run_span.py).
    tracer_provider = TracerProvider(resource=resource, id_generator=run_span.RunIds())
    span_exporter = span_exporter_for(trace_paths)
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(tracer_provider)
    _PROVIDERS.append(tracer_provider)
    metric_exporter = _metric_exporter()
    if metric_exporter is not None:  # else the API's no-op meter: instruments cost nothing
        meter_provider = MeterProvider(resource=resource, metric_readers=[
            PeriodicExportingMetricReader(metric_exporter)])
        metrics.set_meter_provider(meter_provider)
        _PROVIDERS.append(meter_provider)
    _setup_logging(service, level)
    return trace.get_tracer(f"scaidrive.{service}")


def record_error(span: trace.Span, exc: BaseException, cause: str | None = None) -> None:
    """Record `exc` on `span` as an "exception" event: as OpenTelemetry does when file paths may
    be traced, else with no exception's message in it (`trace_privacy.exception_attributes`:
    the type, `cause` or a `SyncError`'s cause, the frames of the chain)."""
    if _trace_paths:
        span.record_exception(exc)
    else:
        span.add_event("exception", trace_privacy.exception_attributes(exc, cause))


def span_exporter_for(trace_paths: bool) -> SpanExporter | None:
    """The configured span exporter; unless paths may be traced, behind the path-free net."""
    exporter = _span_exporter()
    if exporter is None or trace_paths:
        return exporter
    return trace_privacy.PathFreeExporter(exporter)


def _span_exporter() -> SpanExporter | None:
    choice = _exporter_choice("TRACES")
    if choice == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter()  # endpoint, headers, timeout from the OTEL_* variables
    return None


def _metric_exporter():
    choice = _exporter_choice("METRICS")
    if choice == "console":
        return ConsoleMetricExporter(out=sys.stderr)
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        return OTLPMetricExporter()
    return None


def shutdown() -> None:
    """Flush what is buffered (spans of the last messages handled) before the process exits."""
    for provider in _PROVIDERS:
        try:
            provider.shutdown()
        except Exception:  # exporting is best effort: never block a shutdown on it
            logging.getLogger(__name__).warning("telemetry flush failed", exc_info=True)
    _PROVIDERS.clear()


def inject() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract(headers: dict | None) -> context.Context:
    carrier = {k: str(v) for k, v in (headers or {}).items() if isinstance(v, (str, bytes))}
    return propagate.extract(carrier)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current trace and span ids."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        span = trace.get_current_span().get_span_context()
        line = {"ts": round(record.created, 3), "level": record.levelname,
                "service": self.service, "logger": record.name, "msg": record.getMessage()}
        if span.is_valid:
            line |= {"trace_id": f"{span.trace_id:032x}", "span_id": f"{span.span_id:016x}"}
        for key in ("connector_id", "run_id", "outcome", "files"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def _setup_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter at INFO/DEBUG can include connection details; keep it at WARNING.
    for noisy in ("aiormq", "aio_pika", "smbprotocol", "spnego", "urllib3", "httpx", "asyncio",
                  "redis", "uvicorn.access", "opentelemetry"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
