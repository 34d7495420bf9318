"""What a Windows admin types for a domain account and its directory, and what it becomes:
the NTLM logon name, the refusals on save, the directory's address and base DN, the owners
that are no one, and a refused domain logon in plain words."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared import errors
from shared.config.active_directory import (
    kerberos_principal,
    logon_name,
    realm_base_dn,
    unowned_reason,
)
from shared.config.connector_model import parse_create
from shared.config.ldap_directory import LdapDirectory
from shared.sources.smb.ntstatus import to_sync_error
from shared.sources.smb.source import SmbSource

BODY = {"name": "x", "server": r"\\fs1.corp.example.com\data", "password": "pw",
        "target_share": "data"}


@pytest.mark.parametrize(("username", "domain", "logon"), [
    ("svc", "CORP", "CORP\\svc"),
    ("svc", "corp.example.com", "corp.example.com\\svc"),
    ("CORP\\svc", "", "CORP\\svc"),
    ("CORP\\svc", "CORP", "CORP\\svc"),  # typed twice: once is used
    ("svc@corp.example.com", "CORP", "svc@corp.example.com"),  # a UPN as typed
    ("svc", "", "svc"),  # the file server's own account
    (" svc ", " CORP ", "CORP\\svc"),
])
def test_the_logon_name_is_what_the_admin_typed_with_the_domain_once(username, domain, logon):
    assert logon_name(username, domain) == logon
    source = SmbSource("fs1", "data", username=username, domain=domain, password="pw")
    assert source._user == logon  # what smbprotocol's NTLM session is given


@pytest.mark.parametrize(("username", "domain", "field", "words"), [
    ("OTHER\\svc", "CORP", "domain", "give the domain once"),
    ("svc@other.example.com", "CORP", "domain", "give the domain once"),
    ("CORP\\", "", "username", "not a logon name"),
    ("svc", "CORP\\", "domain", "CORP or corp.example.com"),
    ("svc", "corp example", "domain", "CORP or corp.example.com"),
])
def test_a_username_and_domain_that_cannot_both_hold_are_refused_at_the_field(
        username, domain, field, words):
    with pytest.raises(ValidationError) as caught:
        parse_create(BODY | {"username": username, "domain": domain})
    [error] = caught.value.errors()
    assert error["loc"][-1] == field and words in error["msg"]


@pytest.mark.parametrize(("username", "domain", "principal"), [
    ("svc", "corp.example.com", "svc@CORP.EXAMPLE.COM"),
    ("svc@corp.example.com", "", "svc@CORP.EXAMPLE.COM"),  # a UPN names the realm
    ("svc@corp.example.com", "CORP", "svc@CORP.EXAMPLE.COM"),
    ("CORP\\svc", "corp.example.com", "svc@CORP.EXAMPLE.COM"),  # the Domain field names it
])
def test_kerberos_asks_for_the_principal_in_the_realm_of_the_domains_dns_name(
        username, domain, principal):
    assert kerberos_principal(username, domain) == principal
    source = SmbSource("fs1", "data", username=username, domain=domain, password="pw",
                       auth="kerberos")
    assert (source._user, source._kw()["auth_protocol"]) == (principal, "kerberos")


def test_ntlm_is_named_never_negotiated():
    """"negotiate" would try Kerberos first for every connector wherever gssapi is installed."""
    source = SmbSource("fs1", "data", username="svc", domain="CORP", password="pw")
    assert source._kw()["auth_protocol"] == "ntlm"


@pytest.mark.parametrize(("username", "domain"), [("svc", "CORP"), ("CORP\\svc", ""),
                                                  ("svc", "")])
def test_kerberos_without_the_domains_dns_name_is_refused_at_save(username, domain):
    with pytest.raises(ValidationError) as caught:
        parse_create(BODY | {"username": username, "domain": domain, "smb_auth": "kerberos"})
    error = caught.value.errors()[0]
    assert error["loc"][-1] == "smb_auth"
    assert "corp.example.com" in error["msg"]
    parse_create(BODY | {"username": username, "domain": domain})  # NTLM: fine


def test_a_netbios_and_a_dns_name_of_one_domain_agree():
    body = parse_create(BODY | {"username": "CORP\\svc", "domain": "corp.example.com"})
    assert body.domain == "corp.example.com"


def test_an_ad_admin_gives_the_dc_and_the_realm_and_the_rest_follows():
    ad = LdapDirectory(domain_controller="dc1.corp.example.com", realm="corp.example.com",
                       bind_dn="svc@corp.example.com")
    assert (ad.server_url, ad.search_base, ad.sid_attr, ad.transport) == (
        "ldaps://dc1.corp.example.com:636", "DC=corp,DC=example,DC=com", "objectSid", "ldaps")
    starttls = LdapDirectory(domain_controller="dc1:3389", bind_dn="svc@corp.example.com",
                             tls="starttls")
    assert (starttls.server_url, starttls.search_base) == ("ldap://dc1:3389",
                                                           "DC=corp,DC=example,DC=com")
    samba_ldap = LdapDirectory(url="ldap://ldap1", base_dn="ou=people,dc=corp")
    assert (samba_ldap.server_url, samba_ldap.sid_attr, samba_ldap.transport) == (
        "ldap://ldap1", "sambaSID", "none")


@pytest.mark.parametrize(("fields", "words"), [
    ({"domain_controller": "dc1"}, "realm"),  # nothing to derive a base DN from
    ({"domain_controller": "dc1", "url": "ldap://dc1", "base_dn": "dc=x"}, "one of them"),
    ({"base_dn": "dc=x"}, "one of them"),
    ({"domain_controller": "dc1", "realm": "corp..com!"}, "not a DNS domain"),
    ({"url": "ldaps://dc1", "base_dn": "dc=x", "tls": "starttls"}, "ldap:// url"),
    ({"domain_controller": "dc1", "realm": "corp.com", "ca_certificate": "not pem"},
     "not a PEM certificate"),
])
def test_directory_settings_that_cannot_work_are_refused(fields, words):
    with pytest.raises(ValidationError, match=words.replace(".", r"\.")):
        LdapDirectory(**fields)


def test_realms_become_naming_contexts():
    assert realm_base_dn("SCAITEST.LAN") == "DC=scaitest,DC=lan"
    with pytest.raises(ValueError):
        realm_base_dn("")


@pytest.mark.parametrize(("sid", "words"), [
    ("S-1-5-32-544", "BUILTIN\\Administrators"),
    ("S-1-5-18", "NT AUTHORITY\\SYSTEM"),
    ("S-1-3-0", "CREATOR OWNER"),
    ("S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464", "Windows service"),
    ("S-1-5-21-1-2-3-512", "Domain Admins"),
])
def test_principals_that_are_no_one_are_told_apart_by_their_sid(sid, words):
    reason = unowned_reason(sid)
    assert reason is not None and words in reason


@pytest.mark.parametrize("sid", ["S-1-5-21-1-2-3-1103", "S-1-5-21-1-2-3-500", "S-1-22-1-1000"])
def test_people_are_left_to_the_directory(sid):
    assert unowned_reason(sid) is None


class Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"STATUS {status:#x}")
        self.ntstatus = status


@pytest.mark.parametrize(("status", "words"), [
    (0xC0000072, "the account is disabled in the domain"),
    (0xC0000193, "the account has expired in the domain"),
    (0xC0000234, "the account is locked out"),
    (0xC0000418, "the domain refuses NTLM logons: log on with Kerberos"),
    (0xC000006D, "the server refused the username or password"),
])
def test_a_refused_domain_logon_says_why_in_plain_words(status, words):
    error = to_sync_error(Refused(status), None)
    assert isinstance(error, errors.AuthFailed) and error.cause == "auth_failed"
    assert str(error).startswith(words) and f"{status:#x}" in str(error)


@pytest.mark.parametrize(("words", "kind", "plain"), [
    ("Krb5Error: Preauthentication failed -1765328360", errors.AuthFailed,
     "the domain refused the password"),
    ("Krb5Error: Client 'x@CORP.EXAMPLE.COM' not found in Kerberos database -1765328378",
     errors.AuthFailed, "the domain has no such account"),
    ("Krb5Error: Client's credentials have been revoked -1765328366", errors.AuthFailed,
     "the account is disabled, locked out or expired"),
    ('Krb5Error: Cannot find KDC for realm "CORP.EXAMPLE.COM" -1765328230',
     errors.KerberosUnavailable, "no Kerberos KDC is known for the realm"),
    ("Krb5Error: Cannot contact any KDC for realm 'CORP.EXAMPLE.COM'",
     errors.KerberosUnavailable, "no Kerberos KDC of the realm answered"),
    ("Krb5Error: Clock skew too great", errors.KerberosUnavailable, "this machine's clock"),
    # What the Samba DC's file server answers to a ticket of 2 minutes (seen on this machine).
    ("SpnegoError (4294967295): Major (851968): Unspecified GSS failure.  Minor code may provide "
     "more information, Minor (2529638944): Ticket expired, Context: Processing security token",
     errors.KerberosUnavailable, "the file server took the new Kerberos ticket for expired"),
])
def test_a_failed_kerberos_logon_says_why_and_blames_the_credentials_only_when_they_are_wrong(
        words, kind, plain):
    error = to_sync_error(SpnegoFailure(words), None)
    assert type(error) is kind and str(error).startswith(plain) and words in str(error)
    assert (error.cause == "auth_failed") is (kind is errors.AuthFailed)


def test_a_server_name_the_domain_does_not_know_is_the_servers_field():
    error = to_sync_error(SpnegoFailure(
        "Server cifs/10.0.0.5@CORP.EXAMPLE.COM not found in Kerberos database"), None)
    assert isinstance(error, errors.ConfigInvalid) and error.field == "server"
    assert "no service principal cifs/<name>" in str(error)


class SpnegoFailure(Exception):
    """What smbprotocol raises when pyspnego's Kerberos step fails (its text carries krb5's)."""
