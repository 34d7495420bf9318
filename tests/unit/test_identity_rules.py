"""Identity rules without any server: the table, email and fuzzy-name matching, SID forms."""
import pytest

from shared.config.identity_mapping import (
    User,
    UserIndex,
    match_email,
    match_name,
    parse_table,
    sid_from_bytes,
    sid_to_bytes,
)

USERS = [User(id="u1", email="Alice.Smith@Example.com", display_name="Alice Smith"),
         User(id="u2", email="bob@example.com", display_name="Bob Jones"),
         User(id="u3", email="robert@example.com", display_name="Bob Jonas"),
         User(id="u4", display_name="Chandra Ramaswamy")]


def test_table_parses_with_or_without_header_and_names_bad_lines():
    table, problems = parse_table(
        "smb-sid,scaidrive-user-id\nS-1-5-21-1-2-3-1001, u1\n\nnot-a-sid,u2\n"
        "S-1-5-21-1-2-3-1001,u3\nS-1-22-1-1002\n")
    assert table == {"S-1-5-21-1-2-3-1001": "u1"}
    assert [(p.line, p.message.split()[-1]) for p in problems] == [
        (4, "e-mail"), (5, "twice"), (6, "smb-sid,scaidrive-user-id")]


# The identity service indexes the users once per import (`UserIndex`): the same answers.
FORMS = [pytest.param(list, id="users"), pytest.param(UserIndex, id="indexed")]


@pytest.mark.parametrize("form", FORMS)
def test_email_matches_case_insensitively_and_only_once(form):
    assert match_email(" alice.smith@EXAMPLE.com", form(USERS)).id == "u1"
    assert match_email("nobody@example.com", form(USERS)) is None
    assert match_email(None, form(USERS)) is None
    for twins in (USERS + [User(id="u9", email="BOB@example.com")],
                  USERS + [User(id="u9", email="bob@example.com"), User(id="u8")] * 2):
        assert match_email("bob@example.com", form(twins)) is None  # two claim it: no guess
        assert match_email("robert@example.com", form(twins)).id == "u3"


@pytest.mark.parametrize("form", FORMS)
def test_name_match_returns_its_score(form):
    user, score = match_name("Smith, Alice", form(USERS), threshold=80, margin=5)
    assert user.id == "u1" and score >= 80
    user, score = match_name("Chandra Ramaswami", form(USERS), threshold=80, margin=5)
    assert user.id == "u4" and 80 <= score < 100


@pytest.mark.parametrize("form", FORMS)
def test_ambiguous_or_weak_names_do_not_match(form):
    user, score = match_name("Bob Jon", form(USERS), threshold=70, margin=5)
    assert user is None and score is not None  # Jones vs Jonas: too close to call
    assert match_name("Zed Zebra", form(USERS), threshold=80, margin=5)[0] is None
    assert match_name("", form(USERS), threshold=80, margin=5) == (None, None)
    assert match_name("Bob Jones", form([]), threshold=80, margin=5) == (None, None)


@pytest.mark.parametrize("sid", ["S-1-5-21-3623811015-3361044348-30300820-1013",
                                 "S-1-22-1-1002", "S-1-5-32-544"])
def test_binary_sid_round_trip(sid):
    raw = sid_to_bytes(sid)
    assert raw[0] == 1 and raw[1] == len(sid.split("-")) - 3
    assert sid_from_bytes(raw) == sid


def test_known_binary_sid():
    # S-1-5-32-544 (Administrators) as Active Directory stores it.
    assert sid_to_bytes("S-1-5-32-544").hex() == "01020000000000052000000020020000"
