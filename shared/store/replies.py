"""redis-py's types, narrowed to what the store's client really exchanges.

redis-py types every reply as `bytes | str`, since it cannot know how a client was opened. The
store's client is always opened with decode_responses=True (`State.connect`), so every reply is
text (an index value's bytes in it too, through encoding_errors="surrogateescape": see
`binary_records`): these helpers say so, in this one place, for the type checker. They only
cast: nothing is copied, decoded or checked at run time.

`hset_mapping` goes the other way: HSET's `mapping` is typed as a mapping keyed by any
encodable value, which a `dict[str, ...]` is not to mypy (a mapping's key type is invariant),
though redis-py takes it as it is.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import cast, overload

from redis.typing import EncodableT

Reply = bytes | str  # one value of a reply, as redis-py types it


@overload
def text(reply: Reply) -> str: ...


@overload
def text(reply: Reply | None) -> str | None: ...


def text(reply: Reply | None) -> str | None:
    """A string reply (GET, HGET): None where the key or field does not exist."""
    return cast(str | None, reply)


def texts(reply: list[Reply]) -> list[str]:
    """A list reply (LRANGE, HKEYS)."""
    return cast(list[str], reply)


def maybe_texts(reply: list[Reply | None]) -> list[str | None]:
    """A list reply with holes (MGET, HMGET): None where a key or field does not exist."""
    return cast(list[str | None], reply)


def text_set(reply: set[Reply]) -> set[str]:
    """A set reply (SMEMBERS)."""
    return cast(set[str], reply)


def text_hash(reply: dict[Reply, Reply]) -> dict[str, str]:
    """A hash reply (HGETALL, HSCAN's page): field -> value."""
    return cast(dict[str, str], reply)


def hset_mapping(mapping: Mapping[str, EncodableT]) -> Mapping[EncodableT, EncodableT]:
    """A field -> value mapping as HSET's `mapping` argument (the same object)."""
    return cast(Mapping[EncodableT, EncodableT], mapping)
