"""Conditional write and delete (two-way sync writes ScaiDrive's changes back to the source):
`expect` is the version the change was based on, or ABSENT for a file new in ScaiDrive. A
concurrent edit at the source must surface as ChangedAtSource, never be overwritten."""
from __future__ import annotations

import io
import os

import pytest

from shared import errors
from shared.sources.sharepoint.upload_session import UPLOAD_CHUNK
from shared.sync.model import ABSENT
from shared.sync.one_way import same_content
from tests.conformance.remotes import MiB, sha

SIZES = [0, 14, 6 * MiB + 5]  # SharePoint: a simple PUT, one upload chunk, several


def body(size: int, fill: bytes = b"ScaiDrive edit") -> bytes:
    return (fill * (size // len(fill) + 1))[:size] if size < MiB else os.urandom(size)


def write(source, path: str, data: bytes, **kw):
    return source.write(path, io.BytesIO(data), len(data), **kw)


# --- both backends ------------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
def test_write_expecting_the_current_version_replaces_it(source, remote, size):
    remote.put("f.txt", b"as read from the source")
    current = source.stat("f.txt")
    data = body(size)

    entry = write(source, "f.txt", data, expect=current)

    assert entry == source.stat("f.txt") and entry.size == size
    assert sha(remote.read("f.txt")) == sha(data)
    again = write(source, "f.txt", b"next", expect=entry)  # the returned version is current
    assert again.size == 4 and remote.read("f.txt") == b"next"


@pytest.mark.parametrize("size", SIZES)
def test_write_expecting_an_older_version_is_a_conflict(source, remote, size):
    ours = write(source, "f.txt", b"what ScaiDrive last synced")
    remote.modify("f.txt", b"a colleague's edit at the file server")  # after we read it

    with pytest.raises(errors.ChangedAtSource) as info:
        write(source, "f.txt", body(size), expect=ours)

    assert info.value.path == "f.txt" and info.value.cause == "changed_at_source"
    assert info.value.permanent
    assert remote.read("f.txt") == b"a colleague's edit at the file server"


def test_write_expecting_a_file_deleted_meanwhile_is_a_conflict(source, remote):
    ours = write(source, "gone.txt", b"ours")
    remote.delete("gone.txt")

    with pytest.raises(errors.ChangedAtSource):
        write(source, "gone.txt", b"edited in ScaiDrive", expect=ours)
    assert not remote.exists("gone.txt")


@pytest.mark.parametrize("size", SIZES)
def test_write_expecting_absent(source, remote, size):
    remote.put("taken/f.txt", b"someone was first")
    data = body(size)

    with pytest.raises(errors.ChangedAtSource) as info:
        write(source, "taken/f.txt", data, expect=ABSENT)
    assert info.value.path == "taken/f.txt"
    assert remote.read("taken/f.txt") == b"someone was first"

    entry = write(source, "new/sub/f.txt", data, expect=ABSENT)
    assert entry == source.stat("new/sub/f.txt") and sha(remote.read("new/sub/f.txt")) == sha(data)


def test_delete_only_the_expected_version(source, remote):
    ours = write(source, "a/d.txt", b"ours")
    remote.modify("a/d.txt", b"their edit")

    with pytest.raises(errors.ChangedAtSource) as info:
        source.delete("a/d.txt", expect=ours)
    assert info.value.path == "a/d.txt" and remote.read("a/d.txt") == b"their edit"

    source.delete("a/d.txt", expect=source.stat("a/d.txt"))
    assert not remote.exists("a/d.txt")
    with pytest.raises(errors.NotFound):  # already gone: as an unconditional delete
        source.delete("a/d.txt", expect=ours)


# --- SharePoint: Graph re-checks at commit ------------------------------------------------------

class EditingStream(io.BytesIO):
    """The bytes to upload; `edit()` runs at the second read, while the upload session is open
    and its first chunk is already at Graph."""

    def __init__(self, data: bytes, edit) -> None:
        super().__init__(data)
        self.edit, self.reads = edit, 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        if self.reads == 2:
            self.edit()
        return super().read(size)


@pytest.mark.parametrize("expecting", ["version", "absent"])
def test_an_edit_landing_during_the_upload_is_refused_at_commit(graph, sp, expecting):
    source = sp.make_source()
    if expecting == "version":
        sp.put("big.bin", b"v1")
    expect = source.stat("big.bin") if expecting == "version" else ABSENT
    data = os.urandom(2 * UPLOAD_CHUNK + 1000)
    stream = EditingStream(data, lambda: sp.modify("big.bin", b"their edit, mid-upload"))
    graph.reset_counts()

    with pytest.raises(errors.ChangedAtSource) as info:
        source.write("big.bin", stream, len(data), expect=expect)

    assert info.value.path == "big.bin"
    assert graph.counts()["upload_chunk"] >= 3  # every chunk went up; the commit was refused
    assert sp.read("big.bin") == b"their edit, mid-upload"


def test_the_simple_put_of_an_empty_file_carries_if_match(sp):
    source = sp.make_source()
    sp.put("e.txt", b"v1")
    current = source.stat("e.txt")
    real = source._put_empty

    def put_after_an_edit(client, *args):  # the edit lands between our read and the PUT
        sp.modify("e.txt", b"their edit")
        return real(client, *args)

    source._put_empty = put_after_an_edit
    with pytest.raises(errors.ChangedAtSource):
        source.write("e.txt", io.BytesIO(b""), 0, expect=current)
    assert sp.read("e.txt") == b"their edit"


def test_the_delete_carries_if_match(sp):
    source = sp.make_source()
    sp.put("d.txt", b"v1")
    current = source.stat("d.txt")
    real = source._file

    async def file_then_an_edit(path):  # the edit lands between our read and the DELETE
        item = await real(path)
        sp.modify("d.txt", b"their edit")
        return item

    source._file = file_then_an_edit
    with pytest.raises(errors.ChangedAtSource):
        source.delete("d.txt", expect=current)
    assert sp.read("d.txt") == b"their edit"


# --- SharePoint rewrites Office files on upload -------------------------------------------------

@pytest.fixture
def office(graph):
    graph.rewrite_office = True
    yield
    graph.rewrite_office = False


@pytest.mark.parametrize("size", SIZES)
def test_write_returns_the_version_sharepoint_holds_after_an_office_rewrite(sp, office, size):
    source = sp.make_source()
    data = body(size, b"PK\x03\x04 word/document.xml ")

    entry = write(source, "Reports/Q1.docx", data, expect=ABSENT)

    held = sp.read("Reports/Q1.docx")
    assert held != data and entry.size == len(held) != size  # SharePoint added its metadata
    listing = source.list()
    listed = listing.entries["Reports/Q1.docx"]
    assert same_content(listed, entry) and listed == entry  # no false change, no re-download
    assert entry == source.stat("Reports/Q1.docx")

    again = write(source, "Reports/Q1.docx", data, expect=entry)  # no false conflict either
    assert same_content(source.list(listing.cursor).entries["Reports/Q1.docx"], again)
