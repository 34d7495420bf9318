"""The directory owner SIDs are looked up in: Active Directory, or Samba+LDAP (OpenLDAP with the
samba schema). Settings only; the lookup itself is the identity service's.

An AD admin gives what they know: the domain controller (`dc1.corp.example.com`), the realm
(`corp.example.com`: the base DN `DC=corp,DC=example,DC=com` follows), a bind account as
`svc@corp.example.com` or `CORP\\svc`, and the CA that issued the DC's certificate (PEM). Then
SIDs are searched as AD keeps them (binary `objectSid`) over LDAPS unless told otherwise.
Samba+LDAP keeps the full form: `url`, `base_dn`, a bind DN and `sid_attribute: sambaSID`.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from shared.config.active_directory import realm_base_dn, split_logon

LDAP_PORTS = {"ldaps": 636, "starttls": 389, "none": 389}


class LdapDirectory(BaseModel):
    """Where owner SIDs are looked up. The bind password is encrypted at rest, never shown."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    url: str = Field(default="", pattern=r"^(ldaps?://[^/\s]+/?)?$")
    # Active Directory: a domain controller's name (or address), optionally with its port.
    domain_controller: str = Field(default="", pattern=r"^([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:]+\])"
                                                       r"(:\d{1,5})?$|^$", max_length=260)
    realm: str = Field(default="", max_length=255)  # corp.example.com: gives the base DN
    base_dn: str = ""
    bind_dn: str = ""  # a DN, user@realm or DOMAIN\user
    bind_password: SecretStr | None = None
    # auto: LDAPS for a domain controller or an ldaps:// url, else plain LDAP.
    tls: Literal["auto", "ldaps", "starttls", "none"] = "auto"
    ca_certificate: str | None = Field(default=None, max_length=65536)  # PEM; else system CAs
    sid_attribute: str = ""  # default: objectSid for Active Directory, else sambaSID
    mail_attribute: str = "mail"
    name_attribute: str = "displayName"

    @field_validator("ca_certificate")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        if not value:
            return None
        from cryptography import x509

        try:
            x509.load_pem_x509_certificates(value.encode())
        except ValueError:
            raise ValueError("not a PEM certificate (-----BEGIN CERTIFICATE-----...)") from None
        return value

    @field_validator("realm")
    @classmethod
    def _realm(cls, value: str) -> str:
        if value:
            realm_base_dn(value)  # a ValueError naming the realm
        return value

    @model_validator(mode="after")
    def _complete(self) -> LdapDirectory:
        if bool(self.url) == bool(self.domain_controller):
            raise ValueError("give the directory as `domain_controller` (Active Directory) or "
                             "as `url` (ldap://host or ldaps://host), one of them")
        if not self.search_base:
            raise ValueError("give `base_dn`, or the `realm` (corp.example.com) to derive it")
        if self.tls == "starttls" and self.url.startswith("ldaps://"):
            raise ValueError("tls 'starttls' needs an ldap:// url (ldaps:// is TLS already)")
        if self.tls == "ldaps" and self.url.startswith("ldap://"):
            raise ValueError("tls 'ldaps' needs an ldaps:// url")
        return self

    # --- what the lookup uses -------------------------------------------------------------

    @property
    def is_active_directory(self) -> bool:
        return bool(self.domain_controller or self.realm)

    @property
    def transport(self) -> Literal["ldaps", "starttls", "none"]:
        if self.tls != "auto":
            return self.tls
        if self.url:
            return "ldaps" if self.url.startswith("ldaps://") else "none"
        return "ldaps"

    @property
    def server_url(self) -> str:
        """ldap(s)://host:port of the directory."""
        if self.url:
            return self.url.rstrip("/")
        scheme = "ldaps" if self.transport == "ldaps" else "ldap"
        host = self.domain_controller
        if not host.rpartition("]")[2].count(":"):  # no port given
            host = f"{host}:{LDAP_PORTS[self.transport]}"
        return f"{scheme}://{host}"

    @property
    def search_base(self) -> str:
        """The base DN given, else the realm's (or the bind account's UPN suffix's)."""
        if self.base_dn:
            return self.base_dn
        realm = self.realm or (split_logon(self.bind_dn)[0] if "@" in self.bind_dn else "")
        try:
            return realm_base_dn(realm) if realm else ""
        except ValueError:
            return ""

    @property
    def sid_attr(self) -> str:
        return self.sid_attribute or ("objectSid" if self.is_active_directory else "sambaSID")
