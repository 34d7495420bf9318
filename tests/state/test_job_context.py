"""What a transfer job reads before it starts (`State.job_context`, one Lua call): the
connector, whether its work is held, the path's index entry, and the target share with usage."""
from __future__ import annotations

import json

from shared.store.state import IndexRecord

RECORD = IndexRecord(size=4, mtime_ns=5, file_id="7", owner="u-1", principal="S-1-5-21-1",
                     etag="e", synced_at=1.0)


async def test_nothing_stored_reads_as_absent(state):
    ctx = await state.job_context("c", "a/b.txt", "share")
    assert (ctx.connector, ctx.held, ctx.known, ctx.share) == (None, False, None, None)
    ctx = await state.job_context("c", "a/b.txt", None)
    assert (ctx.connector, ctx.held, ctx.known, ctx.share) == (None, False, None, None)


async def test_index_entry_and_share_with_its_usage(state):
    await state.put_index("c", "a/b.txt", RECORD)
    await state.save_share({"name": "share", "quota_bytes": 100})
    await state.add_usage("share", 42)
    ctx = await state.job_context("c", "a/b.txt", "share")
    assert ctx.known == RECORD
    assert ctx.share == {"name": "share", "quota_bytes": 100, "usage_bytes": 42}
    assert (await state.job_context("c", "a/b.txt", None)).share is None  # not asked for
    assert (await state.job_context("c", "other.txt", "share")).known is None


async def test_share_without_usage_yet(state):
    await state.r.set(state.key("share", "fresh"), json.dumps({"name": "fresh"}))
    assert (await state.job_context("c", "x", "fresh")).share == {"name": "fresh",
                                                                  "usage_bytes": 0}


async def test_paused_or_credentials_refused_hold_the_job(state):
    assert not (await state.job_context("c", "x", None)).held
    await state.set_status("c", paused=1)
    assert (await state.job_context("c", "x", None)).held
    await state.clear_status("c", "paused")
    assert not (await state.job_context("c", "x", None)).held
    assert await state.mark_auth_failed("c", "refused")
    assert (await state.job_context("c", "x", "share")).held
    await state.clear_auth_failed("c")
    assert not (await state.job_context("c", "x", None)).held


async def test_the_script_is_loaded_again_after_a_script_flush(state):
    """A restarted Redis has no scripts: the call loads it again (redis-py's NOSCRIPT path)."""
    await state.put_index("c", "x", RECORD)
    assert (await state.job_context("c", "x", None)).known == RECORD
    await state.r.script_flush()
    assert (await state.job_context("c", "x", None)).known == RECORD
