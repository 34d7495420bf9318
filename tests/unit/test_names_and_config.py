"""Name rules, connector field validation and the schedule."""
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.config.connector_model import ConnectorUpdate, next_due, parse_create, parse_server
from shared.errors import EncodingIssue, InvalidName
from shared.sync.keys import (
    case_collisions,
    check_smb_name,
    conflict_name,
    metadata_value,
    object_key,
    path_of_key,
)


@pytest.mark.parametrize("path", ["a/../b", "../x", "a//b", "/abs", "a\\b", "x/./y", "ctl\x01",
                                  ""])
def test_unsafe_paths_are_refused(path):
    with pytest.raises(InvalidName):
        object_key("pre", path)


def test_lone_surrogate_is_an_encoding_issue():
    with pytest.raises(EncodingIssue):
        object_key("", "bad\udcff.txt")


def test_key_over_1024_bytes_is_refused_with_the_reason():
    with pytest.raises(InvalidName, match="1024"):
        object_key("p", "é" * 520)


def test_keys_keep_the_source_name_and_stay_under_the_prefix():
    assert object_key("", "Ünï/日本.txt") == "Ünï/日本.txt"
    assert object_key("dept", "a b/#%.txt") == "dept/a b/#%.txt"
    assert path_of_key("dept", "dept/a/b") == "a/b"
    assert path_of_key("dept", "other/a") is None
    # NFC and NFD spellings are different files at the source: different keys.
    assert object_key("", "caf\u00e9") != object_key("", "cafe\u0301")


def test_metadata_is_ascii_and_reversible():
    import urllib.parse
    value = metadata_value("Ünï/日本 x.txt")
    assert value.isascii() and urllib.parse.unquote(value) == "Ünï/日本 x.txt"
    for name in (" lead.txt", "trail.txt ", "a b"):  # HTTP would trim spaces at the edges
        value = metadata_value(name)
        assert value == value.strip() and urllib.parse.unquote(value) == name


@pytest.mark.parametrize("server,expected", [
    (r"\\fs.example.com\share", ("fs.example.com", 445, "share", "")),
    (r"\\fs\share\dept\sub", ("fs", 445, "share", "dept/sub")),
    ("smb://fs.example.com/share", ("fs.example.com", 445, "share", "")),
    ("smb://127.0.0.1:4455/data/a%20b/c", ("127.0.0.1", 4455, "data", "a b/c")),
])
def test_server_forms(server, expected):
    s = parse_server(server)
    assert (s.host, s.port, s.share, s.path) == expected


@pytest.mark.parametrize("server", ["fs/share", "smb://host", r"\\host", "smb://u:p@h/s",
                                    "smb://h/s/../x", "http://h/s"])
def test_bad_servers_are_refused(server):
    with pytest.raises(ValueError):
        parse_server(server)


BASE = dict(name="n", server="smb://h/s", username="u", password="pw", target_share="share-1")


@pytest.mark.parametrize("field,value", [
    ("schedule", "often"), ("schedule", "5s"), ("target_share", "Bad_Name"),
    ("server", "nope"), ("sync_mode", "mirror"), ("target_prefix", "../up"), ("name", ""),
])
def test_bad_fields_are_named(field, value):
    with pytest.raises(ValidationError) as err:
        parse_create(BASE | {field: value})
    assert err.value.errors()[0]["loc"] == ("smb", field)


def test_two_way_settings_are_checked():
    c = parse_create(BASE | {"sync_mode": "two_way", "admin_emails": ["ops@example.com"]})
    assert (c.sync_mode, c.conflict_policy, c.max_delete_percent) == ("two_way", "manual", 50)
    for bad in ({"admin_emails": ["not-an-address"]}, {"conflict_policy": "coin_flip"},
                {"max_delete_percent": 101}):
        with pytest.raises(ValidationError):
            parse_create(BASE | bad)


def test_update_validates_what_it_sets():
    with pytest.raises(ValidationError):
        ConnectorUpdate(schedule="sometimes")
    assert ConnectorUpdate(schedule="1h").model_fields_set == {"schedule"}


def test_schedules():
    t = datetime(2026, 1, 1, 10, 7, tzinfo=UTC)
    assert next_due("5m", t) == datetime(2026, 1, 1, 10, 12, tzinfo=UTC)
    assert next_due("1h", t) == datetime(2026, 1, 1, 11, 7, tzinfo=UTC)
    assert next_due("0 * * * *", t) == datetime(2026, 1, 1, 11, 0, tzinfo=UTC)


# --- names pushed back to a source (two-way) ----------------------------------------------

@pytest.mark.parametrize("path", ["a:b.txt", "q?.doc", "dir/trailing.", "space /x", "CON.txt",
                                  "lpt1", 'say"hi"'])
def test_names_a_windows_share_cannot_hold(path):
    with pytest.raises(InvalidName):
        check_smb_name(path)


@pytest.mark.parametrize("path", ["a.txt", "dir/sub/Résumé 2024.docx", "com10.txt", ".hidden"])
def test_names_a_windows_share_can_hold(path):
    check_smb_name(path)


def test_case_collisions_with_the_source_and_among_pushed_names():
    found = case_collisions(["A.txt", "docs/new.txt", "b.txt", "B.TXT", "fresh/x"],
                            ["a.txt", "Docs/old.txt"])
    assert set(found) == {"A.txt", "docs/new.txt", "b.txt", "B.TXT"}
    assert all(e.cause == "name_collision" for e in found.values())
    assert "'Docs'" in str(found["docs/new.txt"])


@pytest.mark.parametrize("path,expected", [
    ("a/report.docx", "a/report (ScaiDrive conflict 12345678).docx"),
    ("notes", "notes (ScaiDrive conflict 12345678)"),
    (".env", ".env (ScaiDrive conflict 12345678)"),
    ("x/archive.tar.gz", "x/archive.tar (ScaiDrive conflict 12345678).gz"),
])
def test_conflict_copies_keep_folder_and_extension(path, expected):
    assert conflict_name(path, "123456789abc") == expected


# --- SMB transport security and names as the SMB listing sees them ----------------------------

def test_smb_encryption_defaults_to_auto_and_is_checked():
    from shared.config.connector_model import SMB_FIELDS, Connector

    assert parse_create(BASE).smb_encryption == "auto"
    assert parse_create(BASE | {"smb_encryption": "required"}).smb_encryption == "required"
    with pytest.raises(ValidationError) as err:
        parse_create(BASE | {"smb_encryption": "sometimes"})
    assert err.value.errors()[0]["loc"] == ("smb", "smb_encryption")
    # A PATCH of it is a change of the source: config_version bumps, workers reconnect.
    assert ConnectorUpdate(smb_encryption="off").model_fields_set == {"smb_encryption"}
    assert "smb_encryption" in SMB_FIELDS
    stored = Connector(name="n", target_share="share-1", schedule="1h", server="smb://h/s")
    assert stored.smb_encryption == "auto" and stored.public()["smb_encryption"] == "auto"
    sp = Connector(name="n", kind="sharepoint", target_share="share-1", schedule="1h")
    assert "smb_encryption" not in sp.public()


def test_open_source_passes_the_encryption_mode():
    from shared.config.connector_model import Connector
    from shared.sources.factory import open_source

    class Box:
        def open(self, sealed: str) -> str:
            return "pw"

    c = Connector(name="n", target_share="share-1", schedule="1h", server="smb://h:1445/s/p",
                  username="u", password_enc="x", smb_encryption="required")
    first, second = open_source(c, Box(), None), open_source(c, Box(), None)
    assert first.encryption == "required" and (first.port, first.base) == (1445, "p")
    assert first._cache is not second._cache  # each source its own sessions


def test_undecodable_smb_names_are_reported_with_their_folder_and_escaped_bytes():
    from shared.sources.smb.listing import _name_problem, decode_name, shown

    name, valid = decode_name("bad".encode("utf-16-le") + b"\xff\xdc" + "x.txt".encode("utf-16-le"))
    assert not valid and shown(name) == "bad\\udcffx.txt"
    failure = _name_problem("docs/2024", name, valid)
    assert (failure.path, failure.cause) == ("docs/2024/bad\\udcffx.txt", "encoding")
    assert "docs/2024" in failure.message and "bad\\udcffx.txt" in failure.message
    assert decode_name("ok.txt".encode("utf-16-le")) == ("ok.txt", True)


@pytest.mark.parametrize("name", ["a:b", "q?.txt", "back\\slash", "ctl\x01", "nl\n", 'q"',
                                  "p|", "<x>", "star*"])
def test_names_smb_cannot_open_are_invalid_at_listing(name):
    from shared.sources.smb.listing import _name_problem

    failure = _name_problem("f", name, True)
    assert failure.cause == "invalid_name" and failure.path == f"f/{name}"
    assert "\n" not in failure.message and "\x01" not in failure.message


@pytest.mark.parametrize("name", [" lead", "trail.", "..foo", "CON", "%41#", "é" * 127, "del\x7f"])
def test_names_smb_can_open_are_listed(name):
    from shared.sources.smb.listing import _name_problem

    assert _name_problem("", name, True) is None


def test_absurd_schedules_and_tables_are_422_not_crashes():
    with pytest.raises(ValidationError, match="366 days"):
        parse_create(BASE | {"schedule": "99999999999999d"})
    from shared.config.identity_mapping import parse_table
    table, problems = parse_table("S-1-5-21-1-2-3-1001," + "x" * 200_000)
    assert table == {} and "CSV" in problems[0].message
