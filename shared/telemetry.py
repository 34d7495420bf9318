"""Tracing and logs. W3C trace context rides in AMQP headers so one run is one trace.

With no exporter configured, spans are created and dropped (no export cost). Set
OTEL_TRACES_EXPORTER=console to print them; OTLP export is wired by the operations issue.
"""
from __future__ import annotations

import json
import logging
import os
import sys

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter


def setup(service: str, level: str = "INFO") -> trace.Tracer:
    provider = TracerProvider(resource=Resource.create({"service.name": f"scaidrive-{service}"}))
    if os.environ.get("OTEL_TRACES_EXPORTER") == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    trace.set_tracer_provider(provider)
    _setup_logging(service, level)
    return trace.get_tracer(f"scaidrive.{service}")


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
        for key in ("connector_id", "run_id", "outcome"):
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
                  "redis", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
