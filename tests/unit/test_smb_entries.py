"""The listing's own parser of FILE_ID_FULL_DIRECTORY_INFORMATION gives what smbprotocol's
Structure gives (the index holds these values: a different mtime would re-upload every file)."""
import pytest
from smbprotocol.file_info import FileIdFullDirectoryInformation
from smbprotocol.structure import DateTimeField

from shared.sources.smb.listing import parse_entries
from shared.sources.smb.ntstatus import filetime_ns, mtime_ns

EPOCH = 116444736000000000


def _entry(name: str, ticks: int, size: int, attrs: int, ea: int, file_id: int) -> bytes:
    e = FileIdFullDirectoryInformation()
    for field, value in (("creation_time", ticks - 7), ("last_access_time", ticks + 3),
                         ("last_write_time", ticks), ("change_time", ticks + 9),
                         ("end_of_file", size), ("allocation_size", size + 4096),
                         ("file_attributes", attrs), ("ea_size", ea), ("file_id", file_id),
                         ("file_name", name.encode("utf-16-le"))):
        e[field] = value
    return e.pack()


def _chain(*entries: bytes) -> bytes:
    """Entries as a server sends them: 8-byte aligned, each pointing at the next."""
    out = b""
    for i, raw in enumerate(entries):
        padded = raw + b"\0" * (-len(raw) % 8) if i < len(entries) - 1 else raw
        nxt = len(padded) if i < len(entries) - 1 else 0
        out += nxt.to_bytes(4, "little") + padded[4:]
    return out


def test_entries_match_smbprotocol():
    raws = [_entry("a.txt", EPOCH + 17_000_000_123_456_789, 12, 0x20, 0, 2**63 + 5),
            _entry("dossier é", EPOCH + 10, 0, 0x10, 0, 77),
            _entry("link", EPOCH - 5_000_000_001, 0, 0x410, 0xA000000C, 78)]
    buffer = _chain(*raws)
    ours = list(parse_entries(buffer))
    offset, theirs = 0, []
    while True:
        e = FileIdFullDirectoryInformation()
        e.unpack(buffer[offset:])
        theirs.append(e)
        if not e["next_entry_offset"].get_value():
            break
        offset += e["next_entry_offset"].get_value()
    assert len(ours) == len(theirs) == 3
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine.name == ref["file_name"].get_value()
        assert mine.file_id == ref["file_id"].get_value()
        assert mine.size == ref["end_of_file"].get_value()
        assert mine.attrs == ref["file_attributes"].get_value()
        assert mine.ea_size == ref["ea_size"].get_value()
        assert mine.mtime_ns == mtime_ns(ref["last_write_time"].get_value())
        assert mine.change_ns == mtime_ns(ref["change_time"].get_value())  # ChangeTime


@pytest.mark.parametrize("ticks", [EPOCH, EPOCH + 1, EPOCH + 9, EPOCH + 10, EPOCH - 1,
                                   EPOCH - 11, 0, EPOCH + 17_000_000_000_000_000_7])
def test_filetime_as_smbprotocol_datetime(ticks):
    when = DateTimeField(size=8)
    when.set_value(ticks.to_bytes(8, "little"))
    assert filetime_ns(ticks) == mtime_ns(when.get_value())


def test_filetime_beyond_year_9999_is_clamped_not_an_error():
    """smbprotocol maps it to a naive datetime.max (which `mtime_ns` cannot subtract from)."""
    from datetime import UTC, datetime
    latest = mtime_ns(datetime.max.replace(tzinfo=UTC))
    assert filetime_ns(2**64 - 1) == filetime_ns(2**63) == latest
