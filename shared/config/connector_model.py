"""Connector configuration: the seed's fields, validated once, stored without plaintext secrets."""
from __future__ import annotations

import re
import urllib.parse
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    EmailStr,
    Field,
    SecretStr,
    Tag,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.config.active_directory import DOMAIN_NAME, domain_conflict, kerberos_principal
from shared.config.identity_mapping import parse_table
from shared.config.ldap_directory import LdapDirectory
from shared.config.sync_windows import BandwidthLimit, SyncWindows
from shared.contracts import ConflictPolicy, utcnow
from shared.errors import SyncError
from shared.sync.keys import BUCKET_NAME, clean_prefix

_INTERVAL = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_S = 10
SmbEncryption = Literal["auto", "required", "off"]
SmbAuth = Literal["ntlm", "kerberos"]  # how the account logs on to the file server


class SmbServer(BaseModel):
    host: str
    port: int = 445
    share: str
    path: str = ""


def parse_server(value: str) -> SmbServer:
    """`\\\\host\\share[\\path]` or `smb://host[:port]/share[/path]`."""
    value = value.strip()
    if value.startswith("\\\\"):
        parts = [p for p in value[2:].split("\\")]
        host, port = parts[0], 445
    elif value.lower().startswith("smb://"):
        url = urllib.parse.urlsplit(value)
        if url.username or url.password or url.query or url.fragment:
            raise ValueError("put credentials in username/password, not in the URL")
        try:
            host, port = url.hostname or "", url.port or 445
        except ValueError:
            raise ValueError("invalid port") from None
        parts = [host] + urllib.parse.unquote(url.path).lstrip("/").split("/")
    else:
        raise ValueError(r"must look like \\host\share[\path] or smb://host[:port]/share[/path]")
    segments = [p for p in parts[1:] if p]
    if not host or not segments:
        raise ValueError("needs a host and a share name")
    if any(seg in (".", "..") for seg in segments):
        raise ValueError("'.' and '..' are not allowed in the path")
    return SmbServer(host=host, port=port, share=segments[0], path="/".join(segments[1:]))


MAX_INTERVAL_S = 366 * 86400


def schedule_seconds(schedule: str) -> int | None:
    """Interval in seconds for '5m'-style schedules, None for a cron expression."""
    match = _INTERVAL.match(schedule)
    return int(match.group(1)) * _UNITS[match.group(2)] if match else None


def next_due(schedule: str, after: datetime) -> datetime:
    seconds = schedule_seconds(schedule)
    if seconds is not None:
        return after + timedelta(seconds=seconds)
    return croniter(schedule, after).get_next(datetime)


def _check_server(value: str) -> str:
    parse_server(value)
    return value


def _check_schedule(value: str) -> str:
    seconds = schedule_seconds(value)
    if seconds is None and not croniter.is_valid(value):
        raise ValueError("use an interval like 5m, 15m, 1h or a cron expression")
    if seconds is not None and seconds < MIN_INTERVAL_S:
        raise ValueError(f"interval must be at least {MIN_INTERVAL_S}s")
    if seconds is not None and seconds > MAX_INTERVAL_S:
        raise ValueError("interval must be at most 366 days")
    return value


def _check_site_url(value: str) -> str:
    url = urllib.parse.urlsplit(value)
    if url.scheme != "https" or not url.hostname or url.query or url.fragment or url.username:
        raise ValueError("must look like https://contoso.sharepoint.com/sites/team")
    return value.rstrip("/")


def check_credential(secret: SecretStr | None, certificate: SecretStr | None,
                     password: SecretStr | None) -> None:
    """Exactly one credential; a certificate must hold a private key (that its password opens)
    and a certificate, so a bad upload is refused on save, not at the first sync."""
    if (secret is None) == (certificate is None):
        raise ValueError("give exactly one of client_secret or certificate")
    if certificate is None:
        return
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    pem = certificate.get_secret_value().encode()
    try:
        x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise ValueError("certificate: no PEM certificate found") from None
    try:
        load_pem_private_key(pem, password.get_secret_value().encode() if password else None)
    except (ValueError, TypeError):
        raise ValueError("certificate: no private key that the certificate_password opens") \
            from None


ServerStr = Annotated[str, AfterValidator(_check_server)]
ScheduleStr = Annotated[str, AfterValidator(_check_schedule)]
GuidStr = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$",
                               description="a GUID")]
SiteUrlStr = Annotated[str, AfterValidator(_check_site_url)]


class IdentityMapping(BaseModel):
    """Chain: the table first, then `strategy` (email or name, through the directory), then the
    system owner."""

    model_config = ConfigDict(extra="forbid")
    strategy: Literal["system_owner", "email", "name", "table"] = "system_owner"
    system_owner: str = Field(default="system", min_length=1, max_length=200)
    table: str | None = None  # CSV `smb-sid,scaidrive-user-id`
    ldap: LdapDirectory | None = None
    name_threshold: float = Field(default=85, ge=50, le=100)
    name_margin: float = Field(default=5, ge=0, le=50)

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        _, problems = parse_table(value)
        if problems:
            raise ValueError("; ".join(f"line {p.line}: {p.message}" for p in problems))
        return value

    @model_validator(mode="after")
    def _needs_directory(self) -> IdentityMapping:
        if self.strategy in ("email", "name") and self.ldap is None:
            raise ValueError(f"strategy {self.strategy!r} needs `ldap` (the directory to ask)")
        return self


class ConnectorFields(BaseModel):
    """Fields every kind of connector has; shared by create and update."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    target_share: str
    target_prefix: str = ""
    sync_mode: Literal["one_way", "two_way"] = "one_way"
    schedule: ScheduleStr = "15m"
    identity_mapping: IdentityMapping = Field(default_factory=IdentityMapping)
    # Two-way: who hears of conflicts, how they are settled, and when deletions wait for an admin.
    admin_emails: list[EmailStr] = Field(default_factory=list, max_length=50)
    conflict_policy: ConflictPolicy = "manual"
    max_delete_percent: int = Field(default=50, ge=0, le=100)
    # Throttles, across every worker (shared/config/sync_windows.py): bytes per second moved,
    # files in flight at once, and when runs may start and transfers run (None: no limit).
    bandwidth_limit: BandwidthLimit = None
    max_parallel_transfers: int | None = Field(default=None, ge=1, le=1000)
    sync_windows: SyncWindows | None = None

    @field_validator("target_share")
    @classmethod
    def _share(cls, value: str) -> str:
        if not BUCKET_NAME.match(value):
            raise ValueError("3-63 characters: lowercase letters, digits and '-'")
        return value

    @field_validator("target_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        try:
            return clean_prefix(value)
        except SyncError as exc:  # pydantic reports ValueErrors only
            raise ValueError(str(exc)) from None



def _check_domain(value: str | None) -> str | None:
    if value and not DOMAIN_NAME.match(value):
        raise ValueError("an Active Directory domain: CORP or corp.example.com (the username "
                         "may carry it instead: CORP\\user or user@corp.example.com)")
    return value


DomainStr = Annotated[str, Field(max_length=256), AfterValidator(_check_domain)]


def _logon_form(value: str | None) -> str | None:
    if value and (problem := domain_conflict(value, "")):
        raise ValueError(problem)
    return value


def _domain_agrees(value: str | None, info: ValidationInfo) -> str | None:
    """The Domain field and a domain named in the username (`CORP\\u`, `u@corp.com`) agree."""
    username = info.data.get("username")
    if value is not None and username and (problem := domain_conflict(username, value)):
        raise ValueError(problem)
    return value


def _realm_known(value: str | None, info: ValidationInfo) -> str | None:
    """Kerberos: the username or the Domain field names the realm (a DNS domain name)."""
    username = info.data.get("username")
    if value == "kerberos" and username:
        kerberos_principal(username, info.data.get("domain") or "")  # ValueError: why not
    return value


class SmbConnectorCreate(ConnectorFields):
    kind: Literal["smb"] = "smb"
    server: ServerStr
    username: str = Field(min_length=1, max_length=256)
    password: SecretStr
    domain: DomainStr = ""  # the account's AD domain (NTLM logs on as DOMAIN\username)
    check_username = field_validator("username")(_logon_form)
    check_domain = field_validator("domain")(_domain_agrees)
    # Signing is always required; encryption: whenever offered, demanded (else the run fails
    # with `encryption_unavailable`), or not asked for.
    smb_encryption: SmbEncryption = "auto"
    # NTLM, or Kerberos (a ticket from the domain's KDC: where NTLM is restricted).
    smb_auth: SmbAuth = "ntlm"
    check_realm = field_validator("smb_auth")(_realm_known)


class SharePointConnectorCreate(ConnectorFields):
    """An Entra ID application (client secret or certificate) and the library it syncs."""

    kind: Literal["sharepoint"]
    tenant_id: GuidStr
    client_id: GuidStr
    client_secret: SecretStr | None = None
    certificate: SecretStr | None = None  # PEM: private key and certificate
    certificate_password: SecretStr | None = None
    site_url: SiteUrlStr
    library: str = Field(min_length=1, max_length=255)
    # When the client secret expires (Entra ID shows it; Graph never tells us): its admins are
    # mailed 30 days before. A certificate's expiry is read from the certificate itself.
    secret_expires_at: datetime | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> SharePointConnectorCreate:
        check_credential(self.client_secret, self.certificate, self.certificate_password)
        return self


def _kind(value) -> str:
    """Connectors made before SharePoint existed (and most SMB bodies) carry no kind."""
    kind = value.get("kind", "smb") if isinstance(value, dict) else getattr(value, "kind", "smb")
    return kind if kind in ("smb", "sharepoint") else "smb"


ConnectorCreate = Annotated[
    Annotated[SmbConnectorCreate, Tag("smb")]
    | Annotated[SharePointConnectorCreate, Tag("sharepoint")],
    Discriminator(_kind)]


def parse_create(body: dict) -> SmbConnectorCreate | SharePointConnectorCreate:
    return TypeAdapter(ConnectorCreate).validate_python(body)


class ConnectorUpdate(BaseModel):
    """PATCH body: any subset of the fields (of the connector's own kind)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    schedule: ScheduleStr | None = None
    identity_mapping: IdentityMapping | None = None
    sync_mode: Literal["one_way", "two_way"] | None = None
    admin_emails: list[EmailStr] | None = Field(default=None, max_length=50)
    conflict_policy: ConflictPolicy | None = None
    max_delete_percent: int | None = Field(default=None, ge=0, le=100)
    # Throttles: null (or "off") lifts one (THROTTLE_FIELDS may be null in a PATCH).
    bandwidth_limit: BandwidthLimit = None
    max_parallel_transfers: int | None = Field(default=None, ge=1, le=1000)
    sync_windows: SyncWindows | None = None
    # SMB
    server: ServerStr | None = None
    username: str | None = Field(default=None, min_length=1, max_length=256)
    password: SecretStr | None = None
    domain: DomainStr | None = None
    smb_encryption: SmbEncryption | None = None
    smb_auth: SmbAuth | None = None
    # SharePoint
    tenant_id: GuidStr | None = None
    client_id: GuidStr | None = None
    client_secret: SecretStr | None = None
    certificate: SecretStr | None = None
    certificate_password: SecretStr | None = None
    site_url: SiteUrlStr | None = None
    library: str | None = Field(default=None, min_length=1, max_length=255)
    secret_expires_at: datetime | None = None

    check_username = field_validator("username")(_logon_form)
    check_domain = field_validator("domain")(_domain_agrees)

    @model_validator(mode="after")
    def _one_credential(self) -> ConnectorUpdate:
        if self.client_secret is not None and self.certificate is not None:
            raise ValueError("give either client_secret or certificate, not both")
        if self.certificate is not None:
            check_credential(None, self.certificate, self.certificate_password)
        return self


THROTTLE_FIELDS = {"bandwidth_limit", "max_parallel_transfers", "sync_windows"}
SMB_FIELDS = {"server", "username", "password", "domain", "smb_encryption", "smb_auth"}
SHAREPOINT_FIELDS = {"tenant_id", "client_id", "client_secret", "certificate",
                     "certificate_password", "site_url", "library", "secret_expires_at"}
SECRET_FIELDS = ("password_enc", "ldap_password_enc", "client_secret_enc", "certificate_enc",
                 "certificate_password_enc")


class Connector(BaseModel):
    """The stored connector. `*_enc` fields are Fernet ciphertext and never leave the store."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    kind: Literal["smb", "sharepoint"] = "smb"
    name: str
    # SMB
    server: str | None = None
    username: str | None = None
    password_enc: str | None = None
    domain: str = ""
    smb_encryption: SmbEncryption = "auto"
    smb_auth: SmbAuth = "ntlm"
    check_realm = field_validator("smb_auth")(_realm_known)
    # SharePoint: the app, its credential, and the library resolved to Graph ids on save.
    tenant_id: str | None = None
    client_id: str | None = None
    credential: Literal["client_secret", "certificate"] | None = None
    client_secret_enc: str | None = None
    certificate_enc: str | None = None
    certificate_password_enc: str | None = None
    site_url: str | None = None
    library: str | None = None
    site_id: str | None = None
    drive_id: str | None = None
    secret_expires_at: datetime | None = None  # the client secret's, as the admin gave it

    ldap_password_enc: str | None = None
    target_share: str
    target_prefix: str = ""
    sync_mode: Literal["one_way", "two_way"] = "one_way"
    schedule: str
    identity_mapping: IdentityMapping = Field(default_factory=IdentityMapping)
    admin_emails: list[str] = Field(default_factory=list)
    conflict_policy: ConflictPolicy = "manual"
    max_delete_percent: int = 50
    bandwidth_limit: BandwidthLimit = None
    max_parallel_transfers: int | None = Field(default=None, ge=1, le=1000)
    sync_windows: SyncWindows | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Bumped when credentials or the source location change, so workers drop cached sessions.
    config_version: int = 1
    # Bumped when the identity mapping changes: synced files are re-labelled on the next run.
    identity_version: int = 1

    def public(self) -> dict:
        """The connector as the API shows it: no secret, not even encrypted; only the fields
        of its own kind."""
        other = SHAREPOINT_FIELDS | {"credential", "site_id", "drive_id"} if self.kind == "smb" \
            else SMB_FIELDS
        return self.model_dump(mode="json", exclude=set(SECRET_FIELDS) | other)

    @property
    def smb(self) -> SmbServer:
        return parse_server(self.server or "")
