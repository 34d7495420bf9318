"""Settings from the environment (SCAIDRIVE_*), validated once at start-up.

A service that cannot start with the settings it was given says which variable is wrong and
exits non-zero instead of failing later with a stack trace.
"""
from __future__ import annotations

import sys
from typing import Literal, TypeVar

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "SCAIDRIVE_"


class Settings(BaseSettings):
    """What every service needs: broker, state, storage and the key that guards secrets."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # One RabbitMQ URL, or the comma-separated URLs of a cluster's nodes (tried in order; a comma
    # inside a password is written %2C). shared/messaging/failover.py moves to another node when
    # the one in use is gone.
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    # How redis_url is read (shared/store/connection.py): single (one server), cluster (any node
    # of a Redis Cluster: redis://host:7000/0) or sentinel (the sentinels and the master's name:
    # redis+sentinel://[user:password@]host:26379,host2:26379/mymaster/0).
    redis_mode: Literal["single", "cluster", "sentinel"] = "single"
    # A Redis command unanswered this long is an outage (a hung server), not a wait forever.
    redis_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # Who is told when a connector names nobody itself (comma-separated): its conflicts' mail
    # goes here. A manual-review two-way connector with no address at all is refused on save.
    admin_emails: str = ""
    s3_endpoint: str = "http://127.0.0.1:9000"
    s3_access_key: SecretStr
    s3_secret_key: SecretStr
    s3_region: str = "us-east-1"
    # Comma-separated Fernet keys: the first encrypts, all decrypt (key rotation).
    secret_key: SecretStr
    # Prefix of every Redis key and broker name: lets several stacks share one Redis/RabbitMQ.
    namespace: str = Field(default="scaidrive", pattern=r"^[a-z][a-z0-9-]{0,30}$")
    log_level: str = "INFO"
    # Transfer tuning.
    transfer_concurrency: int = Field(default=8, ge=1, le=64)
    # Scans one scanner process runs at once (each mostly waits for its server).
    scan_concurrency: int = Field(default=8, ge=1, le=64)
    # Scan commands let wait for a free scanner at once: the scheduler starts no more due runs
    # while this many wait (the rest stay due, oldest first), so a run never outlives its lease
    # queued behind the scans of thousands of connectors due together.
    scans_waiting_max: int = Field(default=16, ge=1, le=10_000)
    # A scan's working set in Redis moves this many entries per round trip, and its decision
    # reads the listing this many at a time (memory: a chunk of entries, not the tree).
    scan_chunk: int = Field(default=1000, ge=10, le=100_000)
    # A SharePoint connector lists its whole library again, instead of the changes since its
    # saved delta position, when its last full listing is this old (0: never): what the change
    # feed missed is reconciled.
    full_listing_days: float = Field(default=7.0, ge=0)
    part_size_mb: int = Field(default=8, ge=5, le=512)
    # Small files travel in batches (one message, one Redis script per flush) of up to
    # batch_files files or batch_mb of content; files bigger than batch_file_max_mb, and two-way
    # pushes, comparisons and source deletions, travel alone. 0 files: no batches.
    batch_files: int = Field(default=500, ge=0, le=5000)
    batch_mb: int = Field(default=64, ge=1, le=1024)
    batch_file_max_mb: int = Field(default=4, ge=1, le=256)
    # Files at least this big are claimed in Redis and acked at once (shared/messaging/claims.py),
    # so a transfer longer than RabbitMQ's consumer_timeout is never cut off; a worker holds at most
    # long_jobs_per_worker of them, and a dead worker's claim is republished after claim_ttl_s.
    long_job_mb: int = Field(default=256, ge=1)
    long_jobs_per_worker: int = Field(default=4, ge=1, le=64)
    claim_ttl_s: float = Field(default=60, ge=1)
    # Shards of the identity and transfer stages' lanes (shared/messaging/lanes.py): a fixed set
    # of queues whatever the number of connectors. Change them with the queues drained.
    lanes_main: int = Field(default=8, ge=1, le=256)
    lanes_bulk: int = Field(default=4, ge=1, le=256)
    # Quorum-queue redeliveries before a message is dead-lettered.
    delivery_limit: int = Field(default=5, ge=1, le=100)
    # A run that shows no progress for this long loses its lease (a crashed scanner/worker).
    lease_ttl_s: int = Field(default=600, ge=5)
    scheduler_tick_s: float = Field(default=1.0, gt=0)
    # A share's usage recounted from its bucket this often; quotas (the 90% warning) checked this
    # often (services/scheduler/usage_recount.py).
    usage_recount_s: float = Field(default=6 * 3600, ge=1)
    quota_check_s: float = Field(default=60, gt=0)
    # How often the scheduler looks at every connector (abandoned runs, stale flags, the queue
    # gauges); its tick reads only the connectors that are due.
    scheduler_sweep_s: float = Field(default=15.0, gt=0)
    # On SIGTERM, how long in-flight work may take to finish before the process stops anyway.
    drain_timeout_s: float = Field(default=30, ge=0)
    # File paths on trace spans: off by default (names can be sensitive: "layoffs-2027.xlsx").
    trace_paths: bool = False
    # Microsoft Graph and Entra ID (SharePoint connectors). Overridable for sovereign clouds,
    # TLS-inspecting proxies (with their CA bundle) and the tests' emulator.
    graph_authority: str = "https://login.microsoftonline.com"
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    graph_ca_bundle: str | None = None
    # Graph requests in flight per SharePoint connector and process (Graph's budget is per app).
    graph_concurrency: int = Field(default=4, ge=1, le=32)
    # Longest throttling (429/503 Retry-After) a Graph call waits out before giving up.
    graph_max_wait_s: float = Field(default=900, ge=0)

    @field_validator("amqp_url")
    @classmethod
    def _amqp_urls(cls, value: SecretStr) -> SecretStr:
        split_amqp_urls(value.get_secret_value())
        return value

    def default_admin_emails(self) -> list[str]:
        return [a.strip() for a in self.admin_emails.split(",") if a.strip()]

    def amqp_urls(self) -> list[str]:
        """The broker nodes, in the order they are tried."""
        return split_amqp_urls(self.amqp_url.get_secret_value())

    @field_validator("secret_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr) -> SecretStr:
        for key in value.get_secret_value().split(","):
            try:
                Fernet(key.strip())
            except ValueError:
                raise ValueError(
                    "must be one or more comma-separated Fernet keys "
                    "(make one with: scaidrive-connectors gen-key)"
                ) from None
        return value

    @field_validator("graph_authority", "graph_base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must start with https://")
        return value.rstrip("/")

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


def split_amqp_urls(value: str) -> list[str]:
    """`amqp://a,amqp://b` -> its URLs, blanks dropped; ValueError (which never echoes the
    value: URLs hold passwords) unless there is at least one and each is amqp(s)://."""
    urls = [u.strip() for u in value.split(",") if u.strip()]
    if not urls:
        raise ValueError("must be one or more comma-separated amqp:// URLs")
    for i, url in enumerate(urls, 1):
        if not url.startswith(("amqp://", "amqps://")):
            raise ValueError(f"URL {i} of {len(urls)} must start with amqp:// or amqps://")
    return urls


class ApiSettings(Settings):
    api_token: SecretStr = Field(min_length=16)
    # A second token that may look at everything and change nothing (dashboards, auditors).
    api_readonly_token: SecretStr | None = Field(default=None, min_length=16)
    api_port: int = Field(default=8080, ge=1, le=65535)
    api_host: str = "127.0.0.1"
    # Failed token checks (bad bearer tokens, console logins) allowed per client IP in a fixed
    # window; past that every token check from that IP is refused (429) until the window ends.
    api_auth_max_failures: int = Field(default=10, ge=1, le=10_000)
    api_auth_window_s: int = Field(default=300, ge=1, le=86_400)

    @field_validator("api_readonly_token", mode="before")
    @classmethod
    def _unset_if_empty(cls, value):
        # `SCAIDRIVE_API_READONLY_TOKEN=` (an empty compose variable) means "no such token".
        return None if value == "" else value

    @field_validator("api_readonly_token")
    @classmethod
    def _not_the_admin_token(cls, value: SecretStr | None, info: ValidationInfo):
        admin = info.data.get("api_token")
        if value is not None and admin is not None and \
                value.get_secret_value() == admin.get_secret_value():
            raise ValueError("must differ from SCAIDRIVE_API_TOKEN (else it would be an admin)")
        return value


class ConflictSettings(Settings):
    """The conflict service: how it mails admins, and where its links point."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    # none: plain (a local relay); starttls: upgrade on 587; tls: implicit TLS on 465.
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "scaidrive-connectors@localhost"
    smtp_timeout_s: float = Field(default=30, gt=0)
    # The admin console's base URL: emails link to {console_url}/connectors/{id}.
    console_url: str = "http://127.0.0.1:8080"
    # Alerts (services/conflicts/alerts.py): every connector checked this often (stale,
    # expiring credentials, cleared conditions); a credential's admins hear this long before
    # it expires.
    alert_sweep_s: float = Field(default=60, gt=0)
    credential_warn_days: int = Field(default=30, ge=1, le=365)


S = TypeVar("S", bound=Settings)


def load(cls: type[S] = Settings) -> S:  # type: ignore[assignment]
    """Load settings or exit(2) with one line per bad variable, named as the user sets it."""
    try:
        return cls()  # type: ignore[call-arg]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ENV_PREFIX + str(err["loc"][0]).upper() if err["loc"] else "settings"
            lines.append(f"  {name}: {err['msg']}")
        print("configuration error:\n" + "\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
