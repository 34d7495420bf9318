"""Key rotation: SecretBox.rotate, and rotate_secrets over the connectors in a real Redis
(every `*_enc` field, other fields untouched, idempotent, refuses a secret no key opens)."""
from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared.config.connector_model import SECRET_FIELDS, Connector
from shared.config.secrets import SecretBox
from shared.store.key_rotation import Undecryptable, rotate_secrets
from shared.store.state import State

A, B, C = (Fernet.generate_key().decode() for _ in range(3))


def box(*keys: str) -> SecretBox:
    return SecretBox(SecretStr(",".join(keys)))


def test_rotate_reseals_with_the_first_key():
    old = box(A).seal(SecretStr("hunter2-secret"))
    assert not box(B, A).is_current(old)
    new = box(B, A).rotate(old)
    assert box(B).open(new) == "hunter2-secret" and box(B, A).is_current(new)
    with pytest.raises(ValueError):
        box(A).open(new)
    with pytest.raises(ValueError, match="SCAIDRIVE_SECRET_KEY"):
        box(C).rotate(old)


def sealed(key: str, **plain: str) -> dict:
    return {f"{k}_enc": box(key).seal(SecretStr(v)) for k, v in plain.items()}


async def save(state: State, key: str, name: str, **plain: str) -> Connector:
    c = Connector(name=name, target_share="share-" + name, schedule="1h", **sealed(key, **plain))
    await state.save_connector(c)
    return c


async def test_every_secret_of_every_connector_is_rotated_once(state):
    smb = await save(state, A, "smb", password="smb-pw", ldap_password="ldap-pw")
    sp = await save(state, A, "sp", certificate="PEM", certificate_password="cert-pw")
    cs = await save(state, B, "new", client_secret="already-current")
    # A field a newer version added survives the rewrite.
    raw = json.loads(await state.r.get(state.key("connector", smb.id)))
    await state.r.set(state.key("connector", smb.id), json.dumps(raw | {"future": 1}))

    report = await rotate_secrets(state, box(B, A))
    assert (report.connectors, report.rotated, report.current) == (3, 4, 1)
    plain = {smb.id: {"password_enc": "smb-pw", "ldap_password_enc": "ldap-pw"},
             sp.id: {"certificate_enc": "PEM", "certificate_password_enc": "cert-pw"},
             cs.id: {"client_secret_enc": "already-current"}}
    for cid, expected in plain.items():
        doc = json.loads(await state.r.get(state.key("connector", cid)))
        got = {f: box(B).open(doc[f]) for f in SECRET_FIELDS if doc.get(f)}
        assert got == expected  # B alone opens every secret now
    assert json.loads(await state.r.get(state.key("connector", smb.id)))["future"] == 1
    assert (await state.connector(sp.id)).model_dump(exclude=set(SECRET_FIELDS)) == \
        sp.model_dump(exclude=set(SECRET_FIELDS))

    again = await rotate_secrets(state, box(B, A))  # safe to run twice: nothing left to do
    assert (again.rotated, again.current) == (0, 5)


async def test_a_secret_no_key_opens_stops_everything(state):
    good = await save(state, A, "good", password="pw")
    lost = await save(state, C, "lost", ldap_password="sealed-with-a-key-we-lost")
    before = {c: await state.r.get(state.key("connector", c)) for c in (good.id, lost.id)}
    with pytest.raises(Undecryptable) as exc:
        await rotate_secrets(state, box(B, A))
    assert exc.value.where == [f"connector 'lost' ({lost.id}): ldap_password_enc"]
    assert not exc.value.changed
    after = {c: await state.r.get(state.key("connector", c)) for c in (good.id, lost.id)}
    assert after == before  # nothing was rewritten
