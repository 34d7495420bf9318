"""The identity service's directory lookup: the entry of a source principal (an owner SID) in
Active Directory (binary `objectSid`) or Samba+LDAP (`sambaSID`), over LDAPS, StartTLS or plain
LDAP as the connector says, the server's certificate checked against the CA it was given (else
the system's CAs). What comes back: the entry's mail and display name, and whether it is a group
(a group owns files on an AD file server, but is nobody's account in ScaiDrive).
"""
from __future__ import annotations

import ssl
from typing import NamedTuple

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_bytes, escape_filter_chars

from shared.config.identity_mapping import sid_to_bytes
from shared.config.ldap_directory import LdapDirectory

# objectClass values of groups: AD's `group`, the samba schema's and OpenLDAP's own.
GROUP_CLASSES = {"group", "sambagroupmapping", "posixgroup", "groupofnames",
                 "groupofuniquenames"}


class DirectoryDown(Exception):
    pass


class DirectoryEntry(NamedTuple):
    mail: str | None
    name: str | None  # the display name (for a group without one: its cn)
    group: bool = False


def _tls(cfg: LdapDirectory) -> ldap3.Tls | None:
    if cfg.transport == "none":
        return None
    return ldap3.Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT,
                     ca_certs_data=cfg.ca_certificate or None)


def _filter(cfg: LdapDirectory, sid: str) -> str:
    if cfg.sid_attr.lower() == "objectsid":
        return f"(objectSid={escape_bytes(sid_to_bytes(sid))})"  # AD keeps SIDs binary
    return f"({cfg.sid_attr}={escape_filter_chars(sid)})"


def connect(cfg: LdapDirectory, password: str | None) -> ldap3.Connection:
    """A bound connection (simple bind: a DN, user@realm or DOMAIN\\user; none: anonymous)."""
    server = ldap3.Server(cfg.server_url, use_ssl=cfg.transport == "ldaps", tls=_tls(cfg),
                          connect_timeout=5)
    bind = ldap3.AUTO_BIND_TLS_BEFORE_BIND if cfg.transport == "starttls" else \
        ldap3.AUTO_BIND_NO_TLS
    return ldap3.Connection(server, user=cfg.bind_dn or None, password=password,
                            auto_bind=bind, receive_timeout=10, read_only=True)


def ldap_lookup(cfg: LdapDirectory, password: str | None, sid: str) -> DirectoryEntry | None:
    """The entry holding `sid`; None when there is no such entry. DirectoryDown when the
    directory cannot be reached, refuses the bind or the TLS handshake."""
    wanted = [cfg.mail_attribute, cfg.name_attribute, "cn", "objectClass"]
    try:
        with connect(cfg, password) as conn:
            conn.search(cfg.search_base, _filter(cfg, sid), attributes=wanted, size_limit=2)
            if not conn.entries:
                return None
            attrs = conn.entries[0].entry_attributes_as_dict
    except (LDAPException, ssl.SSLError, OSError) as exc:
        raise DirectoryDown(f"{type(exc).__name__}: {exc}") from exc

    def first(name: str) -> str | None:
        values = attrs.get(name) or [None]
        return None if values[0] is None else str(values[0])

    classes = {str(c).casefold() for c in attrs.get("objectClass", [])}
    return DirectoryEntry(first(cfg.mail_attribute),
                          first(cfg.name_attribute) or (first("cn") if classes & GROUP_CLASSES
                                                        else None),
                          bool(classes & GROUP_CLASSES))
