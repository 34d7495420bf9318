"""The owner SID read from a security descriptor's bytes (`shared.sources.smb.owners.sid_of`,
what the scanner labels each file with) is the SID smbprotocol itself would parse, for the
SIDs a file server hands out; a descriptor naming no owner gives None (not the text "None")."""
import pytest
from smbprotocol.security_descriptor import SIDPacket, SMB2CreateSDBuffer

from shared.sources.smb.owners import sid_of

SIDS = ["S-1-5-21-1004336348-1177238915-682003330-512",  # a domain group
        "S-1-5-21-3623811015-3361044348-30300820-1013",  # a domain user
        "S-1-22-1-1000",  # Samba: a Unix uid without a mapping
        "S-1-5-18",  # Local System
        "S-1-1-0"]  # Everyone


def descriptor(owner: str | None, group: str | None = "S-1-5-32-544") -> bytes:
    sd = SMB2CreateSDBuffer()
    if group is not None:
        sid = SIDPacket()
        sid.from_string(group)
        sd.set_group(sid)
    if owner is not None:
        sid = SIDPacket()
        sid.from_string(owner)
        sd.set_owner(sid)
    return sd.pack()


@pytest.mark.parametrize("owner", SIDS)
def test_the_owner_is_read_as_smbprotocol_reads_it(owner):
    raw = descriptor(owner)
    parsed = SMB2CreateSDBuffer()
    parsed.unpack(raw)
    assert sid_of(raw) == str(parsed.get_owner()) == owner


def test_a_descriptor_without_an_owner_names_none():
    assert sid_of(descriptor(None)) is None
