"""The pipeline's metrics (OpenTelemetry SDK; exported only when telemetry.setup configured an
exporter). Every instrument is labelled with the connector id; errors also with their cause."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

_meter = metrics.get_meter("scaidrive")  # a proxy until the provider is set: safe at import

files = _meter.create_counter("scaidrive.files", unit="{file}",
                              description="files handled by transfer workers, by outcome")
transferred_bytes = _meter.create_counter("scaidrive.transferred", unit="By",
                                          description="bytes moved into ScaiDrive or back")
errors = _meter.create_counter("scaidrive.errors", unit="{error}",
                               description="per-file failures, by cause")
run_duration = _meter.create_histogram("scaidrive.run.duration", unit="s",
                                       description="sync run wall time, by outcome")
resumed_bytes = _meter.create_counter(
    "scaidrive.upload.resumed", unit="By",
    description="bytes of large uploads a stopped worker had sent, not sent again")
throughput = _meter.create_histogram("scaidrive.transfer.throughput", unit="By/s",
                                     description="per-file transfer speed")


def observe_queue_depth(read: Callable[[], dict[str, int]]) -> None:
    """Register the queue-depth gauge; `read` returns the last known depth per connector."""
    def callback(_options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(depth, {"connector.id": cid}) for cid, depth in read().items()]

    _meter.create_observable_gauge("scaidrive.queue.depth", callbacks=[callback],
                                   unit="{job}", description="transfer jobs waiting")
