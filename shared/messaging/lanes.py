"""Work lanes: the fixed set of queues that the per-connector stages (identity, transfer) share.

A queue per connector and stage cost RabbitMQ ~0.65 MB of quorum-queue memory a pair and each
worker a consumer channel per connector (issue 18: 4,000 queues for 2,000 connectors). Instead,
each stage has a fixed number of queues, whatever the number of connectors:

  {ns}.{stage}.main.{k}  k < SCAIDRIVE_LANES_MAIN  (default 8)
  {ns}.{stage}.bulk.{k}  k < SCAIDRIVE_LANES_BULK  (default 4)

A connector's messages go to shard k = crc32(connector id) mod n of their lane. A run starts in
the main lane; once it has published a batch's worth (`SCAIDRIVE_BATCH_FILES` files or
`SCAIDRIVE_BATCH_MB` of content) the rest of it goes to the bulk lane (the scanner decides,
shared/sync has nothing to do with it; identity keeps the lane it was given). So a small
connector that shares a main shard with a huge initial sync waits behind one batch of it at
most, never behind the whole sync: the huge one's bulk goes round the bulk lane, which workers
consume on a channel of its own. Workers take from every shard of both lanes (RabbitMQ delivers
from a channel's queues in turn), so no connector has to be known to a worker in advance.

A paused connector's messages are parked: moved to `{ns}.parked.{connector}` (created only then)
and moved back to their lanes on resume (shared/messaging/broker.py `park`/`unpark`).

Changing the number of shards moves connectors between shards: do it with the queues drained
(messages in a shard that no longer exists stay there).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

from shared.contracts import Lane

LANES: tuple[Lane, ...] = ("main", "bulk")
STAGES = {"identity": "changes", "transfer": "transfer"}  # stage -> the exchange feeding it


@dataclass(frozen=True)
class Lanes:
    main: int = 8
    bulk: int = 4

    def count(self, lane: Lane) -> int:
        return self.main if lane == "main" else self.bulk

    def shard(self, connector_id: str, lane: Lane) -> int:
        return zlib.crc32(connector_id.encode()) % self.count(lane)

    def routing_key(self, exchange: str, connector_id: str, lane: Lane) -> str:
        """`transfer` is a direct exchange: `main.3`; `changes` is a topic exchange whose key
        keeps the connector (`main.3.<id>`), so a platform consumer can bind to one connector."""
        key = f"{lane}.{self.shard(connector_id, lane)}"
        return f"{key}.{connector_id}" if exchange == "changes" else key

    def queues(self, stage: str) -> list[tuple[str, Lane, str]]:
        """(queue short name, lane, binding key) of every shard of a stage."""
        exchange = STAGES[stage]
        return [(f"{stage}.{lane}.{k}", lane, f"{lane}.{k}.#" if exchange == "changes"
                 else f"{lane}.{k}")
                for lane in LANES for k in range(self.count(lane))]
