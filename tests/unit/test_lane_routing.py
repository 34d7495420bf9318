"""Lanes: where a connector's work goes (shared/messaging/lanes.py)."""
from __future__ import annotations

from collections import Counter

from shared.messaging.lanes import Lanes


def test_a_connector_keeps_its_shard_and_connectors_spread():
    lanes = Lanes(main=8, bulk=4)
    ids = [f"{i:08x}" for i in range(2000)]
    assert [lanes.shard(i, "main") for i in ids] == [lanes.shard(i, "main") for i in ids]
    per_shard = Counter(lanes.shard(i, "main") for i in ids)
    assert set(per_shard) == set(range(8)) and max(per_shard.values()) < 2000 / 8 * 1.3
    assert {lanes.shard(i, "bulk") for i in ids} == set(range(4))


def test_routing_keys_match_the_bindings_of_one_queue_each():
    lanes = Lanes(main=3, bulk=2)
    for stage, exchange in (("identity", "changes"), ("transfer", "transfer")):
        queues = lanes.queues(stage)
        assert len(queues) == 5 and len({q for q, _, _ in queues}) == 5
        for lane in ("main", "bulk"):
            key = lanes.routing_key(exchange, "abc123", lane)
            bound = [q for q, in_lane, binding in queues if in_lane == lane and (
                binding == key or binding.removesuffix("#") == key.rsplit(".", 1)[0] + ".")]
            assert bound == [f"{stage}.{lane}.{lanes.shard('abc123', lane)}"]
    assert lanes.routing_key("changes", "abc123", "main").endswith(".abc123")  # per connector
