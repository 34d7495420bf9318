"""Re-encrypt every stored secret with the first key of SCAIDRIVE_SECRET_KEY
(`scaidrive-connectors rotate-key`).

To rotate: put the new key first (SCAIDRIVE_SECRET_KEY=new,old) on every service and restart
them, run rotate-key, and once it succeeded drop the old key. Running it again is harmless:
secrets already sealed with the first key are left as they are.

Two passes. The first opens every secret of every connector: a secret that no key opens stops
the rotation before anything is written, naming its connector (rotating the others would only
hide that one is lost). The second rewrites each connector in an optimistic transaction
(WATCH), so a change an admin saves meanwhile is never overwritten with older data. Connectors
are handled as raw JSON: fields this code does not know survive the rewrite untouched.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from redis.exceptions import WatchError

from shared.config.connector_model import SECRET_FIELDS
from shared.config.secrets import SecretBox
from shared.store.replies import text_set
from shared.store.state import State

ATTEMPTS = 5  # rewrites of one connector that lost the race to a concurrent save


@dataclass
class Report:
    connectors: int = 0  # connectors looked at
    rotated: int = 0  # secrets re-encrypted with the first key
    current: int = 0  # secrets that were sealed with it already


class Undecryptable(Exception):
    """Secrets that no key of SCAIDRIVE_SECRET_KEY opens: `where` names each one."""

    def __init__(self, where: list[str], changed: bool = False):
        super().__init__("; ".join(where))
        self.where = where
        self.changed = changed  # secrets of other connectors were rotated already


def _secrets(doc: dict) -> list[str]:
    return [f for f in SECRET_FIELDS if doc.get(f)]


def _unopenable(box: SecretBox, doc: dict) -> list[str]:
    bad = []
    for name in _secrets(doc):
        try:
            box.open(doc[name])
        except ValueError:
            bad.append(f"connector {doc.get('name')!r} ({doc.get('id')}): {name}")
    return bad


async def _ids(state: State) -> list[str]:
    return sorted(text_set(await state.r.smembers(state.key("connectors"))))


async def check(state: State, box: SecretBox) -> int:
    """Every stored secret opens with some key (else Undecryptable); returns the count of
    connectors."""
    ids = await _ids(state)
    raws = await state.get_many([state.key("connector", i) for i in ids])
    bad = [b for raw in raws if raw for b in _unopenable(box, json.loads(raw))]
    if bad:
        raise Undecryptable(bad)
    return len(ids)


async def _rotate_one(state: State, box: SecretBox, cid: str, report: Report) -> None:
    key = state.key("connector", cid)
    for _ in range(ATTEMPTS):
        async with state.r.pipeline(transaction=True) as p:
            await p.watch(key)
            raw = await p.get(key)
            if raw is None:
                return  # deleted meanwhile: nothing left to protect
            doc = json.loads(raw)
            if bad := _unopenable(box, doc):  # saved since the check, with a key we lack
                raise Undecryptable(bad, changed=report.rotated > 0)
            stale = [f for f in _secrets(doc) if not box.is_current(doc[f])]
            if not stale:
                report.current += len(_secrets(doc))
                return
            doc |= {f: box.rotate(doc[f]) for f in stale}
            p.multi()
            # Compact, like the JSON pydantic writes for State.save_connector.
            p.set(key, json.dumps(doc, separators=(",", ":"), ensure_ascii=False))
            try:
                await p.execute()
            except WatchError:
                continue  # changed under us: read it again
        report.rotated += len(stale)
        report.current += len(_secrets(doc)) - len(stale)
        return
    raise RuntimeError(f"connector {cid} kept changing during the rotation: run it again")


async def rotate_secrets(state: State, box: SecretBox) -> Report:
    """Re-encrypt every connector's `*_enc` fields (SMB password, LDAP bind password,
    SharePoint client secret, certificate and its password) with the first key."""
    report = Report(connectors=await check(state, box))
    for cid in await _ids(state):
        await _rotate_one(state, box, cid, report)
    return report
