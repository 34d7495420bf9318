"""Claims of long work, against the real Redis: what keeps a long transfer alive after its early
ack, and what brings it back when its worker dies (messaging's `Claims` over the store's
`ClaimRecords`, keys as they always were)."""
import asyncio
import json

from shared.messaging.claims import Claimed, Claims
from shared.store.connection import tagger

TTL = 0.4


def job(n: int = 1) -> Claimed:
    return Claimed(body=json.dumps({"job_id": str(n)}), type="TransferJob", exchange="t.transfer",
                   routing_key="c1", headers={"traceparent": "00-ab-cd-01"}, attempts=n - 1)


async def test_a_renewed_claim_never_expires(state):
    claims = Claims(state.claim_records, TTL)
    token = await claims.take("c1:r:1", job())
    for _ in range(4):
        await asyncio.sleep(TTL / 2)
        assert await claims.renew("c1:r:1", token)
    assert await claims.expired() == []


async def test_an_abandoned_claim_is_handed_out_once_with_its_message(state):
    claims = Claims(state.claim_records, TTL)
    await claims.take("c1:r:2", job(2))
    await asyncio.sleep(TTL * 1.5)
    [(claim_id, _, claimed)], again = await claims.expired(), await claims.expired()
    assert claim_id == "c1:r:2" and claimed == job(2)
    assert again == []  # a second reaper (another scheduler) does not republish it too


def claims_key(state) -> str:
    """{ns}:claims, braced in cluster mode (the three claim keys share a slot)."""
    return f"{state.ns}:{tagger(state.r)('claims')}"


async def test_a_stale_holder_cannot_renew_or_release_a_taken_over_claim(state):
    claims = Claims(state.claim_records, TTL)
    stale = await claims.take("c1:r:3", job())
    await asyncio.sleep(TTL * 1.5)
    [(_, reaper, _)] = await claims.expired()
    assert not await claims.renew("c1:r:3", stale)
    await claims.release("c1:r:3", stale)  # no-op: the reaper holds it now
    base = claims_key(state)
    assert await state.r.hget(base, "c1:r:3")
    await claims.release("c1:r:3", reaper)
    for key in (base, f"{base}:due", f"{base}:token"):  # one slot in a cluster, still
        assert not await state.r.exists(key)


async def test_released_claims_leave_nothing_behind(state):
    claims = Claims(state.claim_records, TTL)
    token = await claims.take("c1:r:4", job())
    await claims.release("c1:r:4", token)
    await asyncio.sleep(TTL * 1.5)
    assert await claims.expired() == []
    assert not await state.r.exists(claims_key(state))
