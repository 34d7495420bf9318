"""Owners: real SIDs from Samba, looked up in a real OpenLDAP (samba schema), mapped to
ScaiDrive users by table, email or fuzzy name, else the system owner; written on the objects."""
from __future__ import annotations

import pytest

from shared.sources.smb.source import SmbSource
from tests.e2e.helpers import new_connector, owners_in_bucket
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e

USERS = [
    {"id": "u-alice", "email": "alice.martin@corp.test", "display_name": "Alice Martin"},
    {"id": "u-rob", "email": "rob@corp.test", "display_name": "Robert Durand"},
    {"id": "u-roberta", "email": "roberta@corp.test", "display_name": "Roberta Durand"},
    {"id": "u-admin", "email": "admin@corp.test", "display_name": "Share Admin"},
]


@pytest.fixture(scope="module")
def people(stack, samba, ldap_server):
    """Files owned by alice, bob and carol; their SIDs as Samba reports them; LDAP entries."""
    for user in ("alice", "bob", "carol"):
        for i in range(2 if user == "bob" else 1):
            samba.write_file(f"owners/{user}-{i}.txt", f"{user} {i}".encode(), owner=user)
    probe = SmbSource(samba.host, samba.share, "owners", port=samba.port,
                      username=samba.username, password=samba.password)
    sids = {u: probe.owners([f"{u}-0.txt"])[f"{u}-0.txt"] for u in ("alice", "bob", "carol")}
    probe.close()
    assert len(set(sids.values())) == 3 and all(s.startswith("S-1-") for s in sids.values())
    # alice: mail (other case) and name; bob: a name close to two users, no mail; carol: absent.
    ldap_server.add_person("alice", sids["alice"], "Alice.Martin@CORP.test", "Martin, Alice")
    ldap_server.add_person("bob", sids["bob"], None, "Durand Robert")
    assert stack.api().put("/users", json=USERS).json()["imported"] == 4
    assert stack.api().put("/users", json=USERS).json() == {"imported": 4, "changed": 0}
    return sids


def mapping(ldap_server, strategy: str, table: str | None = None) -> dict:
    return {"strategy": strategy, "system_owner": "u-admin", "table": table,
            "ldap": {"url": ldap_server.url, "base_dn": ldap_server.base_dn,
                     "bind_dn": ldap_server.bind_dn, "bind_password": ldap_server.bind_password,
                     "sid_attribute": "sambaSID"}}




def report(api, cid: str) -> dict[str, tuple]:
    rows = api.get(f"/connectors/{cid}/identities").json()
    return {r["source_principal"]: (r["user_id"], r["method"], r["files"]) for r in rows}


def test_email_strategy_with_table_first_and_system_owner_last(stack, samba, s3, people,
                                                               ldap_server):
    api = stack.api()
    table = f"smb-sid,scaidrive-user-id\n{people['carol']},u-roberta\n"
    cid = new_connector(api, samba, "id-email", "owners",
                        identity_mapping=mapping(ldap_server, "email", table))["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    assert owners_in_bucket(s3, "id-email") == {
        "alice-0.txt": ("u-alice", "email", people["alice"]),
        "bob-0.txt": ("u-admin", "system_owner", people["bob"]),  # no mail in the directory
        "bob-1.txt": ("u-admin", "system_owner", people["bob"]),
        "carol-0.txt": ("u-roberta", "table", people["carol"]),
    }
    assert report(api, cid) == {people["alice"]: ("u-alice", "email", 1),
                                people["bob"]: ("u-admin", "system_owner", 2),
                                people["carol"]: ("u-roberta", "table", 1)}
    shown = api.get(f"/connectors/{cid}").json()
    assert ldap_server.bind_password not in str(shown)

    # The admin fixes the gap with a table line: bob's files are re-labelled, no bytes move.
    fixed = mapping(ldap_server, "email", table + f"{people['bob']},u-rob\n")
    assert api.patch(f"/connectors/{cid}", json={"identity_mapping": fixed}).status_code == 200
    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert (progress["files_relabeled"], progress["files_transferred"]) == (2, 0), progress
    assert owners_in_bucket(s3, "id-email")["bob-1.txt"] == ("u-rob", "table", people["bob"])
    assert report(api, cid)[people["bob"]] == ("u-rob", "table", 2)


def test_name_strategy_scores_and_refuses_ambiguity(stack, samba, s3, people, ldap_server):
    api = stack.api()
    cid = new_connector(api, samba, "id-name", "owners",
                        identity_mapping=mapping(ldap_server, "name"))["id"]
    wait_run(api, cid)
    rows = {r["source_principal"]: r for r in api.get(f"/connectors/{cid}/identities").json()}
    alice = rows[people["alice"]]
    assert (alice["user_id"], alice["method"]) == ("u-alice", "name") and alice["score"] >= 85
    # "Durand Robert" is as close to Robert as to Roberta Durand: no guess, system owner.
    assert rows[people["bob"]]["user_id"] == "u-admin"
    assert owners_in_bucket(s3, "id-name")["bob-0.txt"][0] == "u-admin"


def test_directory_down_still_syncs_and_recovers(stack, samba, s3, people, ldap_server):
    api = stack.api()
    ldap_server.pause()
    try:
        cid = new_connector(api, samba, "id-down", "owners",
                            identity_mapping=mapping(ldap_server, "email"))["id"]
        view = wait_run(api, cid)
    finally:
        ldap_server.resume()
    assert view["status"]["run"]["outcome"] == "success"
    assert view["status"]["progress"]["files_transferred"] == 4
    assert view["status"]["run"]["owners_degraded"] >= 1
    assert owners_in_bucket(s3, "id-down")["alice-0.txt"][0] == "u-admin"

    # Directory back: the degraded labels are retried on the next run, content untouched.
    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert progress["files_transferred"] == 0 and progress["files_relabeled"] >= 1
    assert owners_in_bucket(s3, "id-down")["alice-0.txt"][:2] == ("u-alice", "email")


def test_bad_table_lines_are_named(stack, samba, people):
    api = stack.api()
    assert api.post("/shares", json={"name": "id-bad"}).status_code == 201
    body = {"name": "bad", "server": f"smb://127.0.0.1:{samba.port}/{samba.share}/owners",
            "username": samba.username, "password": samba.password, "target_share": "id-bad",
            "identity_mapping": {"strategy": "table",
                                 "table": f"{people['alice']},u-alice\nnot-a-sid,u-rob\n"
                                          f"{people['alice']},u-rob\n"}}
    resp = api.post("/connectors", json=body)
    assert resp.status_code == 422
    assert "line 2" in resp.text and "line 3" in resp.text and "line 1" not in resp.text
    body["identity_mapping"]["table"] = f"{people['alice']},u-nobody\n"
    resp = api.post("/connectors", json=body)
    assert resp.status_code == 422 and "line 1: unknown ScaiDrive user 'u-nobody'" in resp.text


def test_users_import_as_csv(stack):
    api = stack.api()
    csv_body = "id,email,display_name\nu-csv,csv@corp.test,Csv Person\nu-bad,not-an-email,X\n"
    resp = api.put("/users", content=csv_body, headers={"content-type": "text/csv"})
    assert resp.status_code == 422 and "line 3" in resp.text
    resp = api.put("/users", content=csv_body.splitlines(True)[0] + csv_body.splitlines(True)[1],
                   headers={"content-type": "text/csv"})
    assert resp.json()["imported"] == 1
    assert {"id": "u-csv", "email": "csv@corp.test", "display_name": "Csv Person"} in \
        api.get("/users").json()


def test_an_owner_imported_after_the_first_sync_labels_their_files(stack, samba, s3, people,
                                                                   ldap_server):
    """Carol's directory entry names a mail no ScaiDrive user had at the first sync: her file
    went to the system owner. Once her user is imported, the next run labels it hers (the
    directory asked again, not its cached answer), with no byte read from the share."""
    ldap_server.add_person("carol", people["carol"], "carol.white@corp.test", "Carol White")
    api = stack.api()
    cid = new_connector(api, samba, "id-late", "owners",
                        identity_mapping=mapping(ldap_server, "email"))["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    assert owners_in_bucket(s3, "id-late")["carol-0.txt"] == \
        ("u-admin", "system_owner", people["carol"])
    assert api.put("/users", json=[{"id": "u-carol", "email": "carol.white@corp.test",
                                    "display_name": "Carol White"}]).status_code == 200
    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert (progress["files_relabeled"], progress["files_transferred"]) == (1, 0), progress
    owners = owners_in_bucket(s3, "id-late")
    assert owners["carol-0.txt"] == ("u-carol", "email", people["carol"])
    assert owners["bob-0.txt"][:2] == ("u-admin", "system_owner")  # still no mail for bob
    assert report(api, cid)[people["carol"]] == ("u-carol", "email", 1)
