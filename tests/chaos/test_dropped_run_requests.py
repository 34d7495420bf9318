"""Found by the chaos run (`bench/chaos_two_way.py --seed 1 --rounds 12`, round 9): a "sync
now" accepted by the API (202) that starts no run.

`close_run` (shared/app/run_lifecycle.py) writes the run's end (`phase: finished`, the status)
and only then frees the lease, in separate Redis calls; `start_run`
(services/scheduler/handlers.py) takes the lease and only then writes the new run's record. A
process SIGKILLed between the two steps (here the transfer worker closing the run, its event
loop slowed by a loaded machine) leaves the lease held by a run that reads finished, for up to
`SCAIDRIVE_LEASE_TTL_S` (600 s by default). Meanwhile every `RunRequested` is dropped as
"coalesced" (`on_run_requested`: "run requested while one is going"), the scheduler's sweep
sees nothing abandoned (it closes only runs that are not finished), and the status shows an
idle connector. After the lease expires nothing starts either until the next scheduled slot:
in the chaos run, no run for 4 minutes after a request, the round's edits unsynced.

Here the same state is made deterministically against the real Redis (the closer "killed" at
the lease's release), and an admin's request must start a run. Fixed: taking the lease
(`runs.acquire_lease`, the ACQUIRE script) takes it over from a run whose record reads
finished, in one step, so a request after such a kill starts its run at once."""
from __future__ import annotations

import secrets

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from services.scheduler.handlers import on_run_requested, start_run, sweep
from shared.app.run_lifecycle import close_run
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.config.secrets import SecretBox
from shared.config.settings import Settings
from shared.contracts import RunRequested
from shared.store.connection import connect
from shared.store.store import Store
from tests.fixtures.stack import REDIS_URL


class Killed(BaseException):
    """SIGKILL at that point: nothing after it runs."""


class Recorder:
    async def publish(self, exchange: str, routing_key: str, _msg, **_kw) -> None:
        return None


@pytest.fixture
async def rt():
    st = Store(connect(REDIS_URL), "u" + secrets.token_hex(4))
    key = SecretStr(Fernet.generate_key().decode())
    settings = Settings(s3_access_key=SecretStr("k"), s3_secret_key=SecretStr("s"),
                        secret_key=key, namespace=st.ns)
    yield Runtime(settings, st, Recorder(), SecretBox(key))  # type: ignore[arg-type]
    keys = [k async for k in st.r.scan_iter(f"{st.ns}:*")]
    if keys:
        await st.r.delete(*keys)
    await st.r.aclose()


async def test_a_run_request_after_a_closer_died_mid_close_starts_a_run(rt, monkeypatch):
    c = Connector(name="chaos", target_share="chaos", schedule="1h")
    await rt.state.save_connector(c)
    run_id = await start_run(rt, c, "manual")
    assert run_id is not None

    async def killed(*_args) -> None:
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(rt.state, "release_lease", killed)
        with pytest.raises(Killed):
            await close_run(rt, c.id, run_id)
    assert (await rt.state.run(c.id))["phase"] == "finished"  # the status reads idle

    await sweep(rt)  # the scheduler's sweep goes by
    await on_run_requested(rt, RunRequested(connector_id=c.id))  # an admin's "sync now"
    assert (await rt.state.run(c.id))["run_id"] != run_id, \
        "the request started no run: the finished run's lease swallowed it"
