"""Active Directory's naming rules, pure: logon names, realms, and the principals that are no one.

What a Windows admin types is taken as typed: `svc-scaidrive` with the Domain field `CORP`,
`CORP\\svc-scaidrive`, or `svc-scaidrive@corp.example.com` (a UPN). `logon_name` turns those
into the one name NTLM is given, `kerberos_principal` into the principal Kerberos asks a
ticket for (`svc-scaidrive@CORP.EXAMPLE.COM`: the realm is the domain's DNS name);
`domain_conflict` finds a username naming another domain than the Domain field (refused on
save rather than failing at the first run).

Owners of files on an AD file server are often not people: `BUILTIN\\Administrators` (what
Windows sets when an administrator creates a file), `NT AUTHORITY\\SYSTEM`, `CREATOR OWNER`,
TrustedInstaller, or a domain group. `unowned_reason` tells those from users by the SID alone
where it can (well-known SIDs and RIDs); other groups are told apart by their directory entry.
"""
from __future__ import annotations

import re

# A NetBIOS domain name (CORP) or a DNS one (corp.example.com).
DOMAIN_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,253}[A-Za-z0-9])?$")

# Well-known SIDs (MS-DTYP 2.4.2.4) outside any domain, as Windows names them.
_WELL_KNOWN = {
    "S-1-1-0": "Everyone",
    "S-1-3-0": "CREATOR OWNER",
    "S-1-3-1": "CREATOR GROUP",
    "S-1-5-7": "NT AUTHORITY\\ANONYMOUS LOGON",
    "S-1-5-11": "NT AUTHORITY\\Authenticated Users",
    "S-1-5-18": "NT AUTHORITY\\SYSTEM",
    "S-1-5-19": "NT AUTHORITY\\LOCAL SERVICE",
    "S-1-5-20": "NT AUTHORITY\\NETWORK SERVICE",
}
_BUILTIN = {"544": "Administrators", "545": "Users", "546": "Guests", "547": "Power Users",
            "548": "Account Operators", "549": "Server Operators", "550": "Print Operators",
            "551": "Backup Operators"}
# A domain's own groups with fixed relative ids (S-1-5-21-<domain>-<rid>).
_DOMAIN_GROUPS = {"512": "Domain Admins", "513": "Domain Users", "514": "Domain Guests",
                  "515": "Domain Computers", "516": "Domain Controllers",
                  "517": "Cert Publishers", "518": "Schema Admins", "519": "Enterprise Admins",
                  "520": "Group Policy Creator Owners", "553": "RAS and IAS Servers"}


def split_logon(username: str) -> tuple[str, str]:
    """(domain named in the username, bare user): `CORP\\u` -> (CORP, u), `u@corp.com` ->
    (corp.com, u), `u` -> ("", u)."""
    if "\\" in username:
        domain, _, user = username.partition("\\")
        return domain, user
    if "@" in username:
        user, _, domain = username.rpartition("@")
        return domain, user
    return "", username


def same_domain(a: str, b: str) -> bool:
    """NetBIOS and DNS names of one domain agree on the first label (CORP, corp.example.com):
    the most that can be told without asking the domain."""
    a, b = a.casefold(), b.casefold()
    return a == b or a.split(".")[0] == b.split(".")[0]


def domain_conflict(username: str, domain: str) -> str | None:
    """Why a username and a Domain field cannot both hold, or None when they can."""
    named, user = split_logon(username.strip())
    if not user or (("\\" in username) and not named):
        return f"{username!r} is not a logon name: use user, DOMAIN\\user or user@domain"
    if named and domain and not same_domain(named, domain):
        return (f"the username names the domain {named!r} but the Domain field says "
                f"{domain!r}: give the domain once")
    return None


def kerberos_principal(username: str, domain: str = "") -> str:
    """`user@REALM` for Kerberos: the realm is the DNS name of the domain the username or the
    Domain field names, in capitals. A NetBIOS name alone (`CORP`) names no realm: ValueError
    saying what to give instead."""
    named, user = split_logon(username.strip())
    for candidate in (named, domain.strip()):
        if "." in candidate:
            return f"{user}@{candidate.upper()}"
    raise ValueError("Kerberos needs the domain's DNS name (the realm): give the Domain as "
                     "corp.example.com, or the username as user@corp.example.com")


def logon_name(username: str, domain: str = "") -> str:
    """The name NTLM logs on with: the username's own domain wins (`CORP\\u`, `u@corp.com`
    as typed); else `DOMAIN\\user` when a Domain is given; else the bare name (the server's
    own accounts)."""
    username, domain = username.strip(), domain.strip()
    if split_logon(username)[0] or not domain:
        return username
    return f"{domain}\\{username}"


# --- the directory ------------------------------------------------------------------------------

def realm_base_dn(realm: str) -> str:
    """`corp.example.com` -> `DC=corp,DC=example,DC=com` (the domain's naming context)."""
    labels = [p for p in realm.strip().strip(".").split(".") if p]
    if not labels or not all(DOMAIN_NAME.match(p) for p in labels):
        raise ValueError(f"{realm!r} is not a DNS domain like corp.example.com")
    return ",".join(f"DC={p.lower()}" for p in labels)


def unowned_reason(sid: str) -> str | None:
    """Why a SID can never be a ScaiDrive user, from the SID alone; None when it may be one."""
    if sid in _WELL_KNOWN:
        return f"owned by {_WELL_KNOWN[sid]}, a built-in principal, not a person"
    parts = sid.split("-")
    if sid.startswith("S-1-5-32-") and len(parts) == 5:
        name = _BUILTIN.get(parts[4], f"alias {parts[4]}")
        return f"owned by BUILTIN\\{name}, a built-in group, not a person"
    if sid.startswith("S-1-5-80-"):
        return "owned by a Windows service (NT SERVICE\\...), not a person"
    if sid.startswith("S-1-5-21-") and len(parts) == 8 and parts[7] in _DOMAIN_GROUPS:
        return f"owned by the group {_DOMAIN_GROUPS[parts[7]]}, not a person"
    return None


def may_be_a_person(principal: str) -> bool:
    """Can a ScaiDrive user be this principal (a SID, or a SharePoint owner's e-mail)?"""
    return unowned_reason(principal) is None


def group_reason(name: str | None) -> str:
    """Why a file owned by a directory group goes to the system owner."""
    return f"owned by the group {name!r}, not a person" if name else \
        "owned by a group, not a person"
