"""SCAIDRIVE_REDIS_MODE: the sentinel URL's form, the client each mode builds, and the keys:
byte for byte those of before in single mode, tagged by connector in cluster mode."""
from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from shared.store.connection import SentinelURL, connect, parse_sentinel_url, tagger
from shared.store.state import State


def test_a_sentinel_url_names_the_sentinels_the_master_and_the_db():
    assert parse_sentinel_url("redis+sentinel://h1:26379,h2:26380/mymaster/2") == SentinelURL(
        [("h1", 26379), ("h2", 26380)], "mymaster", 2)
    assert parse_sentinel_url("redis+sentinel://u:p%40ss@h1/mymaster") == SentinelURL(
        [("h1", 26379)], "mymaster", 0, "u", "p@ss")


@pytest.mark.parametrize("url", ["redis://h1:26379/mymaster", "redis+sentinel://h1:26379",
                                 "redis+sentinel://h1:26379/a/1/x", "redis+sentinel://:1/m"])
def test_a_malformed_sentinel_url_is_refused(url):
    with pytest.raises(ValueError):
        parse_sentinel_url(url)


async def test_each_mode_builds_its_client():
    single = connect("redis://127.0.0.1:6379/0")
    assert isinstance(single, aioredis.Redis) and tagger(single)("c1") == "c1"
    sentinel = connect("redis+sentinel://127.0.0.1:26379/mymaster/0", "sentinel")
    assert isinstance(sentinel, aioredis.Redis) and tagger(sentinel)("c1") == "c1"
    cluster = connect("redis://127.0.0.1:7000/0", "cluster")  # no connection until used
    assert isinstance(cluster, RedisCluster) and tagger(cluster)("c1") == "{c1}"
    with pytest.raises(ValueError):
        connect("redis://127.0.0.1:6379/0", "other")  # type: ignore[arg-type]
    await single.aclose()
    await sentinel.aclose()


def test_single_mode_keys_are_those_of_before_and_cluster_keys_share_the_connectors_slot():
    single = State(aioredis.Redis(), "ns")
    assert single.key("index", "c1") == "ns:index:c1"
    assert single.key("daily", "c1", "20260301") == "ns:daily:c1:20260301"
    assert single.key("connectors") == "ns:connectors"
    cluster = State(connect("redis://127.0.0.1:7000/0", "cluster"), "ns")
    assert cluster.key("index", "c1") == "ns:index:{c1}"
    assert cluster.key("daily", "c1", "20260301") == "ns:daily:{c1}:20260301"
    assert cluster.key("connectors") == "ns:connectors"
