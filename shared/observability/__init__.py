"""Tracing, metrics and logs (`telemetry`: OpenTelemetry set-up, W3C context in AMQP headers,
JSON logs), the pipeline's instruments (`metrics`) and the scrubbing that keeps file names out
of exported spans (`trace_privacy`).

May import: `shared.errors`.
"""
