"""`scaidrive-connectors connectors create` from flags: the API's POST body they make (the
password from the environment, never the command line; what is not given is left out)."""
from __future__ import annotations

from services.cli.commands import create_body
from services.cli.parser import build


def test_an_smb_connector_from_flags_with_a_kerberos_logon(monkeypatch):
    monkeypatch.setenv("SMB_PASSWORD", "s3cret")
    args = build().parse_args([
        "connectors", "create", "--name", "finance", "--server", "smb://fs1.corp.example.com/fin",
        "--username", "svc", "--domain", "corp.example.com", "--smb-auth", "kerberos",
        "--target-share", "finance"])
    assert create_body(args) == {
        "kind": "smb", "name": "finance", "target_share": "finance",
        "server": "smb://fs1.corp.example.com/fin", "username": "svc",
        "domain": "corp.example.com", "smb_auth": "kerberos", "password": "s3cret"}


def test_the_logon_is_left_to_the_api_unless_given(monkeypatch):
    monkeypatch.delenv("SMB_PASSWORD", raising=False)
    args = build().parse_args(["connectors", "create", "--name", "x", "--target-share", "x"])
    assert "smb_auth" not in create_body(args) and "password" not in create_body(args)
