"""A write back to the file server never leaves a broken file there (two-way push-backs, restored
files, keep-both copies): the content goes to a hidden temporary file that replaces the original
in one rename. A writer killed mid-way, a stream that fails, or an edit at the file server during
the upload leaves the original whole; the replacement keeps the original's owner."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from shared import errors
from shared.sources.smb.writing import is_write_temp
from shared.sync.model import ABSENT
from tests.conformance.remotes import MiB, SmbRemote, sha

ORIGINAL = b"the colleague's report, as the file server holds it\n" * 1000


@pytest.fixture
def smb(samba):
    remote = SmbRemote(samba)
    yield remote
    remote.cleanup()


def temps(remote: SmbRemote, folder: str = "") -> list[str]:
    return [n for n in os.listdir(remote.root / folder) if is_write_temp(n)]


class FailingStream(io.RawIOBase):
    """Gives `good` bytes, then runs `then` (raise, or act on the server) on the next read."""

    def __init__(self, good: int, then) -> None:
        self.left, self.then = good, then

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            self.then()
            self.then = lambda: None
            return b"x" * size
        n = min(size, self.left)
        self.left -= n
        return b"x" * n


def test_a_writer_killed_mid_write_leaves_the_original_whole(smb, samba):
    smb.put("docs/report.txt", ORIGINAL)
    size = 12 * MiB
    child = textwrap.dedent(f"""
        import io, sys, time
        from shared.sources.smb.source import SmbSource
        src = SmbSource({samba.host!r}, {samba.share!r}, {smb.base!r}, port={samba.port},
                        username={samba.username!r}, password={samba.password!r},
                        chunk_size=256 * 1024)
        class Slow(io.RawIOBase):
            sent = 0
            def read(self, n=-1):
                if self.sent >= 2 * 1024 * 1024:
                    print("2 MiB sent", flush=True)
                    time.sleep(0.05)  # the upload is under way when the kill comes
                self.sent += n
                return b"s" * n
        expect = src.stat("docs/report.txt")
        print("writing", flush=True)
        src.write("docs/report.txt", Slow(), {size}, expect=expect)
        print("done", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE,
                            cwd=os.getcwd(), text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert proc.stdout.readline().strip() == "2 MiB sent"
        time.sleep(0.3)  # the first 2 MiB are on the server
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()

    assert smb.read("docs/report.txt") == ORIGINAL  # users of the file server see no damage
    (left,) = temps(smb, "docs")
    source = smb.make_source()
    assert set(source.list().entries) == {"docs/report.txt"}  # the temp file is never listed
    assert temps(smb, "docs") == [left]  # a fresh temp may belong to a live writer: kept

    stale = time.time() - 2 * 3600
    os.utime(smb.root / "docs" / left, (stale, stale))
    assert set(source.list().entries) == {"docs/report.txt"}
    assert temps(smb, "docs") == []  # a dead writer's temp file is cleaned up by the next walk


def test_a_stream_that_fails_leaves_the_original_and_no_temp_file(smb):
    smb.put("f.txt", ORIGINAL)
    source = smb.make_source()

    def cut() -> None:
        raise OSError("the object store went away mid-download")
    with pytest.raises(errors.Transient):  # the stream's OSError, mapped by the SMB source
        source.write("f.txt", FailingStream(3 * MiB, cut), 8 * MiB, expect=source.stat("f.txt"))

    assert smb.read("f.txt") == ORIGINAL
    assert temps(smb) == []


def test_an_edit_at_the_file_server_during_the_upload_is_a_conflict(smb):
    smb.put("f.txt", ORIGINAL)
    source = smb.make_source()
    expect = source.stat("f.txt")

    def colleague_saves() -> None:
        smb.modify("f.txt", b"saved at the file server while ScaiDrive's version uploaded")
    with pytest.raises(errors.ChangedAtSource):
        source.write("f.txt", FailingStream(1 * MiB, colleague_saves), 4 * MiB, expect=expect)

    assert smb.read("f.txt") == b"saved at the file server while ScaiDrive's version uploaded"
    assert temps(smb) == []


def test_a_file_created_at_the_server_during_the_upload_is_not_overwritten(smb):
    source = smb.make_source()

    def colleague_creates() -> None:
        smb.put("new.txt", b"created at the file server meanwhile")
    with pytest.raises(errors.ChangedAtSource):
        source.write("new.txt", FailingStream(MiB, colleague_creates), 2 * MiB,
                     expect=ABSENT)

    assert smb.read("new.txt") == b"created at the file server meanwhile"
    assert temps(smb) == []


def test_the_replacement_keeps_the_owner_and_is_recorded_as_the_new_version(smb):
    smb.put("team/plan.txt", ORIGINAL, owner="alice")
    source = smb.make_source()
    owner = source.owners(["team/plan.txt"])["team/plan.txt"]
    before = source.stat("team/plan.txt")

    data = os.urandom(3 * MiB + 7)
    entry = source.write("team/plan.txt", io.BytesIO(data), len(data), expect=before)

    assert sha(smb.read("team/plan.txt")) == sha(data)
    assert source.owners(["team/plan.txt"]) == {"team/plan.txt": owner}  # still alice's
    # The file is a new one on the server: what write returns is what the next listing shows,
    # so the next run sees no change (and no rename).
    assert source.list().entries["team/plan.txt"] == entry == source.stat("team/plan.txt")


def test_without_the_restore_privilege_the_write_still_succeeds(smb, samba):
    smb.put("plan.txt", ORIGINAL, owner="alice")
    samba.set_restore_privilege(False)
    try:
        source = smb.make_source()
        entry = source.write("plan.txt", io.BytesIO(b"pushed"), 6, expect=source.stat("plan.txt"))
    finally:
        samba.set_restore_privilege(True)
    assert smb.read("plan.txt") == b"pushed" and entry.size == 6
    assert temps(smb) == []


def test_a_file_open_at_the_server_is_not_replaced_until_it_is_closed(smb):
    smb.put("open.xlsx", ORIGINAL)
    source, colleague = smb.make_source(), smb.make_source()

    with colleague.open_read("open.xlsx") as reader:  # held open (sharing read/write/delete)
        reader.read(10)
        with pytest.raises(errors.FileInUse) as info:
            source.write("open.xlsx", io.BytesIO(b"pushed"), 6, expect=source.stat("open.xlsx"))
        assert not info.value.permanent  # retried later, not recorded as lost
        assert smb.read("open.xlsx") == ORIGINAL and temps(smb) == []

    source.write("open.xlsx", io.BytesIO(b"pushed"), 6, expect=source.stat("open.xlsx"))
    assert smb.read("open.xlsx") == b"pushed"
