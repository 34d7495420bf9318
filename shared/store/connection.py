"""How the store reaches Redis: one client built from SCAIDRIVE_REDIS_MODE and SCAIDRIVE_REDIS_URL,
and the hash tag that keeps one connector's keys in one slot of a Redis Cluster.

  single     `redis://host:6379/0`: one server (the layout and behaviour of before)
  cluster    `redis://host:7000/0`: any node of a Redis Cluster (redis-py's RedisCluster: it
             follows MOVED/ASK itself); db must be 0
  sentinel   `redis+sentinel://[user:password@]host:26379,host2:26379/mymaster/0`: the sentinels,
             the master's name, the db; the password is the master's

Each mode rides out a failover inside the call (~8-9 s for a cluster with a 5 s node timeout,
~5 s for sentinels that call a master down after 2 s): ConnectionError, TimeoutError,
ClusterDownError and TryAgainError are retried with exponential backoff for about 20 s, so a run
keeps going while a replica takes its dead master's place; a longer outage surfaces as the error
(the broker then waits and puts the message back). A server that stops answering without
closing the connection is such an outage too: a command waits `reply_timeout_s`
(SCAIDRIVE_REDIS_TIMEOUT_S) at most for its reply (tests/state/test_redis_hang.py).

In sentinel mode each attempt to connect asks the sentinels where the master is: redis-py's
asyncio client asks only on a connection's first connect, then reconnects to the address it had,
so after a failover it knocked at the dead master until its retries ran out (redis-py issue
3874; tests/state/test_sentinel_mode.py fails without `MasterConnection`). A demoted master's
READONLY answer is a ConnectionError too (redis-py's), so the next attempt finds the new one.

In cluster mode `tag(r, cid)` is `{cid}`: every key named after a connector holds it braced, so
Redis hashes only the connector id and all its keys (and every script or transaction on them)
share one slot. In the other modes it is the id as is: keys stay byte for byte what they were.

Every connection sends under `asyncio.timeout` (`TimelySend`), not redis-py's `asyncio.wait_for`:
on Python 3.11 wait_for drops a cancellation that arrives as the send finishes (CPython
gh-86296, fixed in 3.12), so a caller's deadline or a stopping service's cancel was lost and the
caller went on as if never cancelled (a transfer job waited for good for a slot its own batch
held; tests/state/test_store_cancellation.py).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ClusterDownError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RedisMode = Literal["single", "cluster", "sentinel"]
# A Redis that accepted a command and never answers (a hung server, a network path that drops
# packets without a reset) must not hang a worker for good: the store sends no blocking command
# and its longest script runs in milliseconds, so a reply this late is an outage.
REPLY_TIMEOUT_S = 10.0
SENTINEL_SCHEME = "redis+sentinel"
# Transient while a master dies and its replica takes over (or a slot moves).
FAILOVER_ERRORS: tuple[type[Exception], ...] = (
    RedisConnectionError, RedisTimeoutError, ClusterDownError, TryAgainError, SlotNotCoveredError)


def _backoff(retries: int) -> Retry:
    # 0.1, 0.2, 0.4, 0.8, 1.6, then 2 s: 6 retries ~5 s, 14 retries ~21 s.
    return Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=retries,
                 supported_errors=cast(Any, FAILOVER_ERRORS))  # one is no RedisError


@dataclass(frozen=True)
class SentinelURL:
    sentinels: list[tuple[str, int]]
    service: str  # the master's name as the sentinels know it
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_sentinel_url(url: str) -> SentinelURL:
    """`redis+sentinel://[user:password@]host:port[,host:port...]/master-name[/db]`."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"a sentinel URL starts with {SENTINEL_SCHEME}://")
    auth, _, hosts = parts.netloc.rpartition("@")
    user, _, password = auth.partition(":")
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "26379")
        if not name:
            raise ValueError(f"sentinel address without a host: {host!r}")
        sentinels.append((name, int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError("a sentinel URL names the master: redis+sentinel://hosts/name[/db]")
    return SentinelURL(sentinels, unquote(path[0]), int(path[1]) if len(path) > 1 else 0,
                       unquote(user) or None, unquote(password) or None)


class TimelySend:
    """Sends a command within the connection's `socket_timeout` by `asyncio.timeout` (see the
    module's doc); a send that overruns it is redis-py's TimeoutError, the connection dropped."""

    socket_timeout: float | None

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        limit = self.socket_timeout
        base = cast(Any, super())
        if not limit:
            await base.send_packed_command(command, check_health)
            return
        self.socket_timeout = None  # redis-py then sends without its wait_for
        try:
            async with asyncio.timeout(limit):
                await base.send_packed_command(command, check_health)
        except TimeoutError:
            await cast(Any, self).disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = limit


class TimelyConnection(TimelySend, Connection):
    pass


class TimelySSLConnection(TimelySend, SSLConnection):
    pass


class TimelyUnixConnection(TimelySend, UnixDomainSocketConnection):
    pass


TIMELY: dict[type, type] = {Connection: TimelyConnection, SSLConnection: TimelySSLConnection,
                            UnixDomainSocketConnection: TimelyUnixConnection}


def timely(cls: Any) -> Any:
    """The connection class that sends as `TimelySend` does, for redis-py's `cls`."""
    return TIMELY.get(cls, cls)


class FailoverCluster(RedisCluster):
    """RedisCluster whose commands wait out a failover: redis-py retries at once (re-reading the
    slots each time), which a dead master's ~9 s of absence exhausts; this backs off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._failover = _backoff(14)
        # RedisCluster takes no connection class: the nodes it makes from here on read it from
        # these kwargs, the startup nodes (made already, no connection opened yet) from their own.
        self.connection_kwargs["connection_class"] = timely(
            self.connection_kwargs.get("connection_class", Connection))
        for node in self.nodes_manager.startup_nodes.values():
            node.connection_class = timely(node.connection_class)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async def attempt() -> Any:
            return await RedisCluster.execute_command(self, *args, **dict(kwargs))
        return await self._failover.call_with_retry(attempt, _ignore)


async def _ignore(_error: Exception) -> None:
    return None


class MasterConnection(TimelySend, SentinelManagedConnection):
    """A connection to the master that the sentinels name at each attempt to connect."""

    async def _connect(self) -> None:
        if self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super()._connect()

    async def connect_check_health(self, check_health: bool = True,
                                   retry_socket_connect: bool = True) -> None:
        # One attempt: the command's own retry makes the next (else each of its ~15 attempts
        # would retry the connect ~15 times: minutes, not the ~20 s of the module's promise).
        await super().connect_check_health(check_health, retry_socket_connect=False)


class SentinelRedis(aioredis.Redis):
    """The master's client; closing it closes its connections to the sentinels too."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        pool = self.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            await pool.sentinel_manager.aclose()


def connect(url: str, mode: RedisMode = "single",
            reply_timeout_s: float = REPLY_TIMEOUT_S) -> aioredis.Redis:
    """The client of a mode. A cluster client answers the commands the store sends like a
    `Redis` (typed as one); what differs (slots) is the key builder's concern (`tag`).
    `reply_timeout_s`: a command unanswered this long is a TimeoutError (retried as above)."""
    # Replies are text; an index value's bytes (binary_records) travel in it as they are.
    common: dict[str, Any] = {"decode_responses": True, "encoding_errors": "surrogateescape",
                              "socket_connect_timeout": 5, "socket_timeout": reply_timeout_s}
    if mode == "cluster":
        # RedisCluster's own retry count also bounds its pipelines' retries (0.25 s apart).
        cluster = FailoverCluster.from_url(url, retry=Retry(ExponentialBackoff(), retries=60),
                                           **common)
        return cast(aioredis.Redis, cluster)
    single = Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=6)  # ~5 s: as before
    retry: dict[str, Any] = {"retry": single if mode == "single" else _backoff(14),
                             "retry_on_error": list(FAILOVER_ERRORS[:2]),
                             "health_check_interval": 30}
    if mode == "sentinel":
        s = parse_sentinel_url(url)
        # A sentinel that is down or hangs is given up at once for the next one.
        sentinel = Sentinel(s.sentinels, sentinel_kwargs={
            "socket_connect_timeout": 2, "socket_timeout": 2, "retry": Retry(NoBackoff(), 0)})
        for asked in sentinel.sentinels:  # a new connection to the master asks them first
            _send_timely(asked)
        return cast(aioredis.Redis, sentinel.master_for(
            s.service, redis_class=SentinelRedis, connection_class=MasterConnection, db=s.db,
            username=s.username, password=s.password, **common, **retry))
    if mode != "single":
        raise ValueError(f"unknown Redis mode {mode!r}")
    return _send_timely(aioredis.from_url(url, **common, **retry))


def _send_timely(client: aioredis.Redis) -> aioredis.Redis:
    """`client` with connections that send as `TimelySend` does (redis-py's `Redis` takes no
    connection class; its pool opens none before the first command)."""
    pool = client.connection_pool
    pool.connection_class = timely(pool.connection_class)
    return client


def is_cluster(r: object) -> bool:
    return isinstance(r, RedisCluster)


def tagger(r: object) -> Callable[[str], str]:
    """`tag` for this client: braces around the id in cluster mode, the id as is otherwise."""
    return _braced if is_cluster(r) else _as_is


def _braced(ident: str) -> str:
    return "{" + ident + "}"


def _as_is(ident: str) -> str:
    return ident
