"""How Microsoft Graph, Entra ID (azure-identity) and httpx failures map to our failure classes,
how secrets are kept out of their messages, and how long throttling asks us to wait.

Imported by `graph` (the session) and `source`, never the other way: what a mapping needs of
the app's credentials comes in as plain values (the secrets to scrub).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime

import httpx
from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from kiota_abstractions.api_error import APIError

from shared import errors

BACKOFF_MAX_S = 60.0  # a 503 without Retry-After: 2, 4, 8 ... s, at most this


class ResyncRequired(errors.Transient):
    """410 on a delta link: the saved position expired; enumerate everything again."""


class StaleListing(errors.Transient):
    """A download did not match the version a folder listing gave for it: the file changed
    after the listing (not while it was read). Tried again, the item is fetched afresh."""


class UrlRefused(errors.Transient):
    """A pre-authenticated download or upload URL answered 401 or 403: its hour is over (or
    the app's access was taken back). A new URL is asked of the item."""


class BadRequest(errors.SyncError):
    """400 from Graph: the request named something malformed (a site URL, a path)."""


class NameConflict(errors.SyncError):
    """409 from Graph: something already holds the name (nameAlreadyExists with a
    conflictBehavior of "fail", or a folder where a file was to be written)."""


class SiteAccessDenied(errors.AuthFailed):
    """403 from Graph on the site or the library itself (not on one item): the application may
    not use this site at all. With `Sites.Selected` that is a site nobody granted it yet; Graph
    says only "accessDenied". Not a file's fault, and no retry helps: like refused credentials
    the connector is held (`auth_failed`, with the plain message below) until an admin grants
    access and saves the connector again; on save it is a 422 on `site_url`
    (services/api/sharepoint_check.py)."""

    def __init__(self, detail: str, path: str | None = None):
        super().__init__(f"{GRANT_MISSING} ({detail})", path)


GRANT_MISSING = (
    "Microsoft Graph refused the application access to this SharePoint site (403 "
    "accessDenied). An application with the Sites.Selected permission needs a grant for each "
    "site (POST /sites/{site-id}/permissions, role write, or read for a one-way connector); "
    "give it one, or give the application Sites.ReadWrite.All instead. Then save the "
    "connector again")


_BY_STATUS: dict[int, type[errors.SyncError]] = {
    400: BadRequest, 401: errors.AuthFailed, 403: errors.PermissionDenied, 404: errors.NotFound,
    409: NameConflict, 410: ResyncRequired,
    412: errors.ChangedAtSource,  # only conditional (If-Match) requests get it
    413: errors.QuotaExceeded, 423: errors.Transient,  # locked: later
    507: errors.QuotaExceeded,  # insufficientStorage: the site's quota is full
}


def api_error(exc: APIError, path: str | None) -> errors.SyncError:
    status = exc.response_status_code or 0
    code = getattr(getattr(exc, "error", None), "code", None) or ""
    message = f"Graph answered {status} {code}: {exc.primary_message or type(exc).__name__}"
    if status == 410 and code and not code.startswith("resync"):
        return errors.NotFound(message, path)  # gone for good, not a delta position
    if status == 403 and not path:  # the site, its libraries, the library's delta: not a file
        return SiteAccessDenied(message, path)
    cls = _BY_STATUS.get(status) or (errors.Transient if status >= 500 else errors.SyncError)
    return cls(message, path)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret in it replaced by *** (never in a message, a log, a failure)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def to_sync_error(exc: BaseException, path: str | None,
                  secrets: Iterable[str | None] = ()) -> errors.SyncError:
    """The one mapping from SDK, azure-identity and httpx failures to our failure classes;
    `secrets` (the app's client secret, certificate password) are scrubbed from the message."""
    if isinstance(exc, errors.SyncError):
        exc.path = exc.path if exc.path is not None else path
        return exc
    if isinstance(exc, APIError):
        error = api_error(exc, path)
    elif isinstance(exc, ClientAuthenticationError):
        # azure-identity's text carries Entra ID's AADSTS code and reason, never the secret.
        error = errors.AuthFailed(f"Entra ID refused the app's credentials: {exc.message}", path)
    elif isinstance(exc, (ServiceRequestError, ServiceResponseError, httpx.TransportError,
                          OSError, asyncio.TimeoutError)):
        error = errors.Transient(f"Microsoft 365 unreachable: {type(exc).__name__}: {exc}", path)
    else:
        error = errors.SyncError(f"{type(exc).__name__}: {exc}", path)
    secrets = tuple(secrets)
    if secrets:
        error.args = (scrub(str(error), secrets),)
    return error


def http_error(response: httpx.Response, path: str) -> errors.SyncError:
    """A plain download/upload URL answered `response` (not 2xx, not throttling)."""
    status, text = response.status_code, response.reason_phrase
    if status in (401, 403):  # the pre-authenticated URL expired: a retry fetches a new one
        return UrlRefused(f"download/upload URL refused ({status} {text})", path)
    cls = _BY_STATUS.get(status) or (errors.Transient if status >= 500 else errors.SyncError)
    return cls(f"Microsoft 365 answered {status} {text}", path)


def retry_after(headers: Mapping[str, str] | None, attempt: int) -> float:
    """Seconds to wait before trying again: Retry-After (seconds or a date), else backoff. A
    Retry-After of 0 (or a date past) is no wait at all, so it counts as absent, as the SDK
    takes it: else a server repeating it would be asked again at once, for as long as the
    throttling budget lasts (which such waits never use up)."""
    value: str | None = None
    for key, val in (headers or {}).items():
        if key.lower() == "retry-after":
            value = val
    backoff = min(BACKOFF_MAX_S, 2.0 ** attempt)
    if value is None:
        return backoff
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return backoff
    return seconds if seconds > 0 else backoff
