"""A run whose files wait in the shared lanes behind other connectors' work keeps its lease
while the lanes hold messages (the scheduler's sweep renews it), and is closed as abandoned as
before once nothing is queued anywhere. Real Redis; the broker's lane depths are given."""
from __future__ import annotations

import secrets

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from services.scheduler.handlers import start_run, sweep
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.config.secrets import SecretBox
from shared.config.settings import Settings
from shared.store.connection import connect
from shared.store.store import Store
from tests.fixtures.stack import REDIS_URL

LEASE_S = 600


class Lanes:
    """The broker as the sweep sees it: `depth` messages ready in the lanes."""

    def __init__(self) -> None:
        self.depth = 0

    async def publish(self, *_args, **_kw) -> None:
        return None

    async def lane_depths(self) -> dict[str, int]:
        return {"transfer.bulk.0": self.depth}


@pytest.fixture
async def rt():
    st = Store(connect(REDIS_URL), "u" + secrets.token_hex(4))
    key = SecretStr(Fernet.generate_key().decode())
    settings = Settings(s3_access_key=SecretStr("k"), s3_secret_key=SecretStr("s"),
                        secret_key=key, namespace=st.ns, lease_ttl_s=LEASE_S)
    yield Runtime(settings, st, Lanes(), SecretBox(key))  # type: ignore[arg-type]
    keys = [k async for k in st.r.scan_iter(f"{st.ns}:*")]
    if keys:
        await st.r.delete(*keys)
    await st.r.aclose()


async def queued_run(rt) -> tuple[str, str]:
    """A run whose scan published 20 files, 1 done; its lease about to run out."""
    c = Connector(name="queued", target_share="queued", schedule="1h")
    await rt.state.save_connector(c)
    run_id = await start_run(rt, c, "schedule")
    assert await rt.state.scan_done(c.id, run_id, 20) == 1
    assert await rt.state.record_outcome(c.id, run_id, "j1", LEASE_S, files_transferred=1) == 1
    await rt.state.r.pexpire(rt.state.key("lease", c.id), 2000)
    return c.id, run_id


async def test_a_run_queued_behind_others_keeps_its_lease_while_the_lanes_hold_work(rt):
    cid, run_id = await queued_run(rt)
    rt.broker.depth = 5000  # other connectors' batches ahead of it
    await sweep(rt)
    assert await rt.state.r.pttl(rt.state.key("lease", cid)) > (LEASE_S - 5) * 1000
    assert (await rt.state.run(cid))["phase"] == "transferring"


async def test_with_nothing_queued_anywhere_the_lease_runs_out_as_before(rt):
    cid, run_id = await queued_run(rt)
    rt.broker.depth = 0
    await sweep(rt)
    assert await rt.state.r.pttl(rt.state.key("lease", cid)) <= 2000  # not renewed
    await rt.state.r.delete(rt.state.key("lease", cid))  # ... and it runs out
    await sweep(rt)
    run = await rt.state.run(cid)
    assert run["phase"] == "finished" and "abandoned" in run["error"]


async def test_a_run_whose_closer_died_after_its_last_job_is_closed_as_its_counts_say(rt):
    """A worker counted the run's last job (the closing token is its) and was killed before it
    wrote the end: once the lease runs out the sweep closes the run, a success, counts kept;
    before, the token it could not take left the run open for good."""
    cid, run_id = await queued_run(rt)
    for job in range(2, 21):
        result = await rt.state.record_outcome(cid, run_id, f"j{job}", LEASE_S,
                                               files_transferred=1)
    assert result == 2  # the last one: its worker holds the closing token, and dies here
    await sweep(rt)
    assert (await rt.state.run(cid))["phase"] == "transferring"  # its lease still runs
    await rt.state.r.delete(rt.state.key("lease", cid))  # ... and it runs out
    await sweep(rt)
    run = await rt.state.run(cid)
    assert (run["phase"], run["outcome"], run["error"]) == ("finished", "success", "")
    assert int(run["files_transferred"]) == 20
    assert await rt.state.lease_holder(cid) is None  # free for the next run
    await sweep(rt)  # closed once: nothing more to do
    assert (await rt.state.run(cid))["finished_at"] == run["finished_at"]
