"""Active Directory for real: a Samba AD domain controller (tests/fixtures/ad_dc.py) serves the
share and the directory. The connector logs on as a domain service account (the Domain field,
DOMAIN\\user, user@realm) and maps owner SIDs through the DC's LDAP (LDAPS or StartTLS with the
DC's CA, base DN from the realm): by email, by name, by table; groups and built-in principals
go to the system owner. A disabled or expired account stops the connector in plain words; a
new password through PATCH resumes it."""
from __future__ import annotations

import pytest

from shared.errors import PLAIN
from tests.e2e.helpers import bucket_tree, owners_in_bucket
from tests.fixtures.ad_dc import BUILTIN_ADMINISTRATORS, serve_dc
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e

USERS = [
    {"id": "u-alice", "email": "alice.martin@corp.test", "display_name": "Alice Martin"},
    {"id": "u-rob", "email": "rob@corp.test", "display_name": "Robert Durand"},
    {"id": "u-roberta", "email": "roberta@corp.test", "display_name": "Roberta Durand"},
    {"id": "u-carol", "email": "carol@corp.test", "display_name": "Carol White"},
    # A ScaiDrive account with the group's mailbox and name: a group is still nobody's file.
    {"id": "u-finance", "email": "finance@corp.test", "display_name": "Finance"},
    {"id": "u-admin", "email": "admin@corp.test", "display_name": "Share Admin"},
]
SYSTEM = "u-admin"


@pytest.fixture(scope="module")
def dc():
    yield from serve_dc()


@pytest.fixture(scope="module")
def api(stack, dc):
    client = stack.api()
    assert client.put("/users", json=USERS).status_code == 200
    return client


def directory(dc, **extra) -> dict:
    """What an AD admin fills in: the DC, the realm, a bind account as user@realm, the CA."""
    return {"domain_controller": dc.address, "realm": "scaitest.lan",
            "bind_dn": f"{dc.service_user}@scaitest.lan", "bind_password": dc.service_password,
            "ca_certificate": dc.ca_pem} | extra


def create(api, dc, name: str, mapping: dict | None = None, **login) -> str:
    assert api.post("/shares", json={"name": name}).status_code == 201
    body = {"name": name, "server": f"\\\\{dc.address}\\{dc.share}\\reports",
            "username": dc.service_user, "domain": dc.netbios,
            "password": dc.service_password, "target_share": name, "schedule": "1h",
            "identity_mapping": mapping or {}} | login
    resp = api.post("/connectors", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]




def test_email_mapping_through_the_domain_field_and_ldaps(api, dc, s3):
    sid = dc.sids
    mapping = {"strategy": "email", "system_owner": SYSTEM, "ldap": directory(dc),
               "table": f"smb-sid,scaidrive-user-id\n{sid['carol']},u-carol\n"}
    cid = create(api, dc, "ad-email", mapping)  # username scaisvc, Domain SCAITEST
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    assert owners_in_bucket(s3, "ad-email") == {
        "alice.txt": ("u-alice", "email", sid["alice"]),  # mail in another case
        "roberta.txt": ("u-roberta", "email", sid["roberta"]),
        "rob.txt": (SYSTEM, "system_owner", sid["rob"]),  # no mail in the directory
        "carol.txt": ("u-carol", "table", sid["carol"]),  # the table first
        "budget.xlsx": (SYSTEM, "system_owner", sid["Finance"]),  # a group, mail or not
        "setup.log": (SYSTEM, "system_owner", BUILTIN_ADMINISTRATORS),
    }
    rows = {r["source_principal"]: (r["user_id"], r["method"], r["files"])
            for r in api.get(f"/connectors/{cid}/identities").json()}
    assert rows[sid["Finance"]] == rows[BUILTIN_ADMINISTRATORS] == (SYSTEM, "system_owner", 1)
    shown = api.get(f"/connectors/{cid}").json()
    assert shown["domain"] == "SCAITEST" and dc.service_password not in str(shown)
    ldap = shown["identity_mapping"]["ldap"]
    assert ldap["domain_controller"] == dc.address and ldap["bind_password"] is None


def test_name_mapping_with_a_down_level_logon_and_starttls(api, dc, s3):
    sid = dc.sids
    ldap = directory(dc, tls="starttls", bind_dn=f"SCAITEST\\{dc.service_user}", realm="",
                     base_dn=dc.base_dn)  # a down-level bind name holds no realm: the DN
    mapping = {"strategy": "name", "system_owner": SYSTEM, "ldap": ldap}
    cid = create(api, dc, "ad-name", mapping, username=f"SCAITEST\\{dc.service_user}",
                 domain="")
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    got = owners_in_bucket(s3, "ad-name")
    assert got["alice.txt"][:2] == ("u-alice", "name")
    assert got["carol.txt"][:2] == ("u-carol", "name")
    # "Robert Durand" is as close to Roberta Durand as to himself: no guess.
    assert got["rob.txt"][:2] == got["roberta.txt"][:2] == (SYSTEM, "system_owner")
    assert got["budget.xlsx"][:2] == (SYSTEM, "system_owner")  # the group named "Finance"
    scores = {r["source_principal"]: r["score"]
              for r in api.get(f"/connectors/{cid}/identities").json()}
    assert scores[sid["alice"]] >= 85


def test_a_disabled_or_expired_account_stops_the_connector_and_a_patch_resumes_it(api, dc, s3):
    dc.add_user("svc-rotate", "First-Pw-12345xyz", "Rotating", "Service")
    cid = create(api, dc, "ad-creds", username="svc-rotate@scaitest.lan", domain="",
                 password="First-Pw-12345xyz")
    first = wait_run(api, cid)
    assert first["status"]["run"]["outcome"] == "success"

    dc.disable("svc-rotate")
    dc.drop_connections()  # a session logged on before outlives the change
    view = sync_and_wait(api, cid)
    status = view["status"]
    assert status["state"] == "auth_failed" and status["run"]["outcome"] == "failed"
    assert "account is disabled in the domain" in status["last_error"]
    assert status["last_error_plain"] == PLAIN["auth_failed"]
    assert api.get(f"/connectors/{cid}/failures").json()[0]["cause"] == "auth_failed"

    dc.enable("svc-rotate")
    dc.expire("svc-rotate")  # enabled again, but past its end date
    refused = api.patch(f"/connectors/{cid}", json={"password": "First-Pw-12345xyz"})
    assert refused.status_code == 422, refused.text
    assert "account has expired" in refused.text

    dc.enable("svc-rotate")  # no end date any more; the admin also set a new password
    dc.set_password("svc-rotate", "Second-Pw-12345xyz")
    dc.write_file("reports/new.txt", b"after the rotation", dc.sids["alice"])
    patched = api.patch(f"/connectors/{cid}", json={"password": "Second-Pw-12345xyz"})
    assert patched.status_code == 200, patched.text
    view = wait_run(api, cid, after=status["run"]["run_id"])  # resumes by itself
    assert view["status"]["state"] == "idle" and view["status"]["run"]["outcome"] == "success"
    assert "new.txt" in bucket_tree(s3.client(), "ad-creds")


def test_the_domain_field_and_a_username_naming_another_domain_are_refused(api, dc):
    assert api.post("/shares", json={"name": "ad-bad"}).status_code == 201
    body = {"name": "bad", "server": f"\\\\{dc.address}\\{dc.share}", "password": "x",
            "target_share": "ad-bad", "username": "OTHER\\svc", "domain": "SCAITEST"}
    resp = api.post("/connectors", json=body)
    assert resp.status_code == 422 and "give the domain once" in resp.text
    mapping = {"strategy": "email", "ldap": {"domain_controller": dc.address}}
    resp = api.post("/connectors", json=body | {"username": "svc", "identity_mapping": mapping})
    assert resp.status_code == 422 and "realm" in resp.text  # no base DN to search under


def test_kerberos_logs_on_where_the_domain_refuses_ntlm(api, dc, s3):
    """A domain that restricts NTLM (what-users-hit lesson 9): an NTLM connector is refused on
    save; one with `smb_auth: kerberos` (a ticket from the DC's KDC for cifs/<the server's
    address>) is saved, syncs every file with its owner, and a wrong password is refused in
    the domain's words at the field to blame."""
    with dc.ntlm_refused():
        assert api.post("/shares", json={"name": "ad-krb"}).status_code == 201
        body = {"name": "krb", "server": f"\\\\{dc.address}\\{dc.share}\\reports",
                "username": dc.service_user, "domain": dc.realm.lower(),
                "password": dc.service_password, "target_share": "ad-krb", "schedule": "1h"}
        refused = api.post("/connectors", json=body)  # NTLM, the default
        assert refused.status_code == 422, refused.text
        [problem] = refused.json()["detail"]
        assert problem["loc"] == ["body", "smb_auth"], problem
        assert "refuses NTLM" in problem["msg"]

        wrong = api.post("/connectors/test", json=body | {"smb_auth": "kerberos",
                                                          "password": "Not-The-Pw-123x"})
        [logon] = wrong.json()["checks"]
        assert (logon["ok"], logon["field"]) == (False, "password"), logon
        assert "Preauthentication failed" in logon["detail"]

        resp = api.post("/connectors", json=body | {"smb_auth": "kerberos"})
        assert resp.status_code == 201, resp.text
        cid = resp.json()["id"]
        assert resp.json()["smb_auth"] == "kerberos"
        assert wait_run(api, cid)["status"]["run"]["outcome"] == "success", \
            api.get(f"/connectors/{cid}/failures").text
        owners = {path: source for path, (_, _, source) in owners_in_bucket(s3, "ad-krb").items()}
        assert owners["alice.txt"] == dc.sids["alice"]
        assert owners["budget.xlsx"] == dc.sids["Finance"]
        assert {"alice.txt", "rob.txt", "roberta.txt", "carol.txt", "setup.log"} <= set(owners)


def test_kerberos_follows_dfs_links_to_other_file_servers_of_the_domain(api, dc, s3):
    """A Kerberos connector on a DFS namespace of a domain refusing NTLM (what-users-hit lesson
    9): a link to another file server of the domain logs on there with a ticket of its own
    (cifs/<that server>); a link to a server the domain has no service principal for is a
    `link_unreachable` failure at the link, in the domain's words and naming the target, and
    the rest syncs with its owners."""
    dc.dfs_link("reports", "reports", dc.alias)
    dc.dfs_link("elsewhere", "reports", dc.unknown)
    with dc.ntlm_refused():
        assert api.post("/shares", json={"name": "ad-dfs"}).status_code == 201
        body = {"name": "krb-dfs", "server": f"\\\\{dc.address}\\dfs",
                "username": dc.service_user, "domain": dc.realm.lower(),
                "password": dc.service_password, "target_share": "ad-dfs", "schedule": "1h",
                "smb_auth": "kerberos"}
        resp = api.post("/connectors", json=body)
        assert resp.status_code == 201, resp.text
        cid = resp.json()["id"]
        assert wait_run(api, cid)["status"]["run"]["outcome"] == "partial"
        [failure] = api.get(f"/connectors/{cid}/failures").json()
    assert (failure["path"], failure["cause"]) == ("elsewhere", "link_unreachable"), failure
    assert f"\\\\{dc.unknown}\\files\\reports" in failure["message"]
    assert "no service principal" in failure["message"], failure["message"]
    owners = {path: source for path, (_, _, source) in owners_in_bucket(s3, "ad-dfs").items()}
    assert owners["reports/alice.txt"] == dc.sids["alice"]
    assert owners["reports/budget.xlsx"] == dc.sids["Finance"]
    assert {p for p in owners if not p.startswith("reports/")} == set()
