"""The requests the owner lookups and small reads pack with `struct`
(`shared.sources.smb.packed_requests`) are byte for byte what smbprotocol's `Open` and
`SMB2QueryInfoRequest` would have sent for them (what a file server then opens, reads and
closes), and what `Connection` reads of a message to charge credits and compound it answers
the same: a wrong offset or length here would open another file or read a truncated one."""
from types import SimpleNamespace

import pytest
from smbprotocol.connection import Connection, Dialects
from smbprotocol.file_info import FileInformationClass, InfoType
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    SMB2QueryInfoRequest,
)

from shared.sources.smb import packed_requests as packed
from shared.sources.smb.plumbing import SHARE_ALL

NAMES = ["a.txt", "dept-01\\project-02\\report-00001.docx", "ünïcödé\\日本語 ファイル.xlsx",
         "x" * 250, "f\\" * 60 + "deep.bin"]
READ = FilePipePrinterAccessMask.FILE_READ_DATA | \
    FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES | FilePipePrinterAccessMask.FILE_READ_EA


def opened(name: str) -> Open:
    connection = SimpleNamespace(dialect=Dialects.SMB_3_1_1, max_read_size=8 << 20)
    return Open(SimpleNamespace(session=SimpleNamespace(connection=connection)), name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("access,options", [
    (FilePipePrinterAccessMask.READ_CONTROL, 0),  # owner lookups
    (READ, CreateOptions.FILE_NON_DIRECTORY_FILE)])  # small reads
def test_create_packs_as_smbprotocol(name, access, options):
    theirs, _ = opened(name).create(
        ImpersonationLevel.Impersonation, access, 0x80, SHARE_ALL, CreateDisposition.FILE_OPEN,
        options, send=False)
    ours = packed.create(name, access, SHARE_ALL, options)
    assert ours.pack() == theirs.pack()
    assert len(ours) == len(theirs)


@pytest.mark.parametrize("info_type,info_class,length,additional", [
    (3, 0, 4096, 0x1),  # the owner of a security descriptor
    (InfoType.SMB2_0_INFO_FILE, FileInformationClass.FILE_INTERNAL_INFORMATION, 8, 0)])
def test_query_info_packs_as_smbprotocol(info_type, info_class, length, additional):
    theirs = SMB2QueryInfoRequest()
    theirs["info_type"] = info_type
    theirs["file_info_class"] = info_class
    theirs["output_buffer_length"] = length
    theirs["additional_information"] = additional
    theirs["file_id"] = opened("a").file_id
    assert packed.query_info(info_type, info_class, length, additional).pack() == theirs.pack()


@pytest.mark.parametrize("length", [1, 4097, 65536, 65537, 1 << 20])
def test_read_packs_and_charges_credits_as_smbprotocol(length):
    theirs, _ = opened("a").read(0, length, send=False)
    ours = packed.read(length)
    assert ours.pack() == theirs.pack()
    connection = SimpleNamespace(supports_multi_credit=True)
    charge = Connection._calculate_credit_charge
    assert charge(connection, ours) == charge(connection, theirs) == (length - 1) // 65536 + 1


def test_close_packs_as_smbprotocol():
    theirs, _ = opened("a").close(send=False)
    assert packed.close().pack() == theirs.pack()
    assert packed.close().COMMAND == theirs.COMMAND
