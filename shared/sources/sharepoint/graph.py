"""Microsoft Graph plumbing: client construction, throttling, `resolve_library` (error mapping:
graph_errors, which this module imports and which imports nothing of it).

msgraph-sdk and azure-identity are async; our `Source` API is blocking and called from many
threads. A `GraphSession` owns a private event loop in a daemon thread and its clients; callers
submit coroutines with `run()`. Wiring follows shared/notes/library-facts.md:
- azure-identity's async credentials (secret or certificate), `disable_instance_discovery`
  so any authority (sovereign cloud, the tests' emulator) works, `connection_verify` for a CA;
- kiota's AzureIdentityAuthenticationProvider (msgraph_core's host check rejects custom hosts),
  a GraphRequestAdapter with the default middleware, `base_url` set by hand without a slash;
- plain httpx (no Authorization) for pre-authenticated download URLs and upload-session PUTs.
The SDK's own retries are off (they wait inside a call, unseen, while the session's other
calls go on asking; and they hand a 429 back at once when Retry-After >= 180 s, which
SharePoint has sent): every 429/503/504 reaches `call()`/`fetch()`, which wait it out within
`max_wait_s`, log it, and hold the session's other calls back until then.
Every request is decorated as Microsoft asks of applications that call SharePoint Online
(`USER_AGENT`: "ISV|CompanyName|AppName/Version"): SharePoint throttles undecorated traffic
first.
"""
from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import ssl
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration

from shared import errors
from shared.sources.sharepoint.graph_errors import BadRequest, http_error, to_sync_error
from shared.sources.sharepoint.throttling import THROTTLED, CallBudget

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return importlib.metadata.version("scaidrive-connectors")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout not installed
        return "0"


USER_AGENT = f"ISV|ScaiDrive|ScaiDrive Connectors/{_version()}"

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TIMEOUT = httpx.Timeout(60.0, connect=15.0)
RETIRE_AFTER_S = 120.0  # a replaced credential/client is closed once its requests are done
T = TypeVar("T")


def if_match(etag: str | None) -> RequestConfiguration[None] | None:
    """A request's condition: only while the item is still at this eTag (else 412)."""
    if etag is None:
        return None
    config: RequestConfiguration[None] = RequestConfiguration()
    config.headers.add("If-Match", etag)
    return config


@dataclass(frozen=True)
class GraphEndpoint:
    """Deployment settings, the same for every connector."""

    authority: str = "https://login.microsoftonline.com"
    graph_base: str = "https://graph.microsoft.com/v1.0"  # no trailing slash
    ca_bundle: str | None = None  # PEM file to verify TLS with (proxies, the tests' emulator)
    concurrency: int = 4  # Graph requests/downloads in flight per source instance
    max_wait_s: float = 900  # longest total throttling wait before giving up (Transient)


@dataclass(frozen=True)
class GraphCredentials:
    """An Entra ID app registration: exactly one of a client secret or a certificate."""

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_pem: str | None = field(default=None, repr=False)  # private key + certificate
    certificate_password: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """What must never reach a message, a log or the failures list."""
        return (self.client_secret, self.certificate_password)


# --- construction ------------------------------------------------------------------------

def _verify(endpoint: GraphEndpoint) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=endpoint.ca_bundle) if endpoint.ca_bundle else True


def _http_client(endpoint: GraphEndpoint) -> httpx.AsyncClient:
    """An httpx client for Graph or for its download and upload URLs, our traffic decorated
    (the SDK's middleware appends its own product after ours)."""
    return httpx.AsyncClient(verify=_verify(endpoint), timeout=TIMEOUT,
                             headers={"User-Agent": USER_AGENT})


def make_credential(endpoint: GraphEndpoint, creds: GraphCredentials) -> Any:
    """azure-identity's async credential for the app (must be built on the session's loop)."""
    from azure.identity.aio import CertificateCredential, ClientSecretCredential

    common: dict[str, Any] = {"authority": endpoint.authority, "disable_instance_discovery": True}
    if endpoint.ca_bundle:
        common["connection_verify"] = endpoint.ca_bundle
    if bool(creds.client_secret) == bool(creds.certificate_pem):
        raise errors.AuthFailed("exactly one of a client secret or a certificate is needed")
    if creds.client_secret:
        return ClientSecretCredential(creds.tenant_id, creds.client_id, creds.client_secret,
                                      **common)
    password = creds.certificate_password.encode() if creds.certificate_password else None
    pem = creds.certificate_pem or ""  # set: exactly one of the two is, checked above
    try:
        return CertificateCredential(creds.tenant_id, creds.client_id,
                                     certificate_data=pem.encode(),
                                     password=password, **common)
    except (ValueError, TypeError) as exc:  # not PEM, wrong password, no private key
        raise errors.AuthFailed(f"the certificate could not be loaded: {type(exc).__name__}") \
            from None


def make_client(endpoint: GraphEndpoint, credential: Any) -> tuple[Any, httpx.AsyncClient]:
    """A GraphServiceClient on `endpoint`, and the httpx client under it (to close)."""
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_service_client import GraphServiceClient
    from msgraph_core import GraphClientFactory

    base = endpoint.graph_base.rstrip("/")
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE],
                                               allowed_hosts=[httpx.URL(base).host])
    http = _http_client(endpoint)
    no_retries = {RetryHandlerOption.get_key(): RetryHandlerOption(should_retry=False)}
    adapter = GraphRequestAdapter(auth, client=GraphClientFactory.create_with_default_middleware(
        client=http, options=no_retries))
    adapter.base_url = base  # the constructor ignores it; httpx's own would add a slash
    return GraphServiceClient(request_adapter=adapter), http


# --- the session -------------------------------------------------------------------------

class GraphSession:
    """One app identity's clients on a private event loop. Thread-safe: `run()` from anywhere."""

    def __init__(self, endpoint: GraphEndpoint, creds: GraphCredentials):
        self.endpoint, self.creds = endpoint, creds
        # tests inject a fake sleep, and a clock it moves
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.clock: Callable[[], float] = time.monotonic
        self.client: Any = None
        self.http: httpx.AsyncClient | None = None  # no auth: download and upload URLs
        self._broken: errors.SyncError | None = None  # credentials that cannot even be built
        self._owned: list[Any] = []  # the http client, the credential and its Graph client
        self._retired: list[Any] = []  # replaced ones, closed a while after (or at close())
        self._closed = False
        self.resume_at = 0.0  # monotonic: no new request before (the last Retry-After given)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="graph-loop",
                                        daemon=True)
        self._thread.start()
        try:
            self.run(self._open())
        except BaseException:
            self.close()  # e.g. an unreadable CA bundle: no thread left behind
            raise

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the session's loop and wait for it (from any thread but that one)."""
        if self._closed:
            coro.close()
            raise errors.SyncError("the SharePoint source is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _open(self) -> None:
        self.slots = asyncio.Semaphore(max(1, self.endpoint.concurrency))
        self.http = _http_client(self.endpoint)
        self._owned.append(self.http)
        self._connect()

    def _connect(self) -> None:
        """A new credential (and so an empty token cache) and Graph client; the ones they
        replace are closed once requests still using them are over."""
        try:
            credential = make_credential(self.endpoint, self.creds)
        except errors.SyncError as exc:
            self._broken = exc
            return
        retired = self._owned[1:]  # [0] is the download/upload client: it stays
        self.client, http = make_client(self.endpoint, credential)
        self._owned[1:] = [credential, http]
        if retired:
            self._retired += retired
            self._loop.call_later(RETIRE_AFTER_S,
                                  lambda: self._loop.create_task(self._retire(retired)))

    async def _retire(self, things: list[Any]) -> None:
        self._retired = [t for t in self._retired if t not in things]
        await self._close_all(things)

    async def call(self, op: Callable[[Any], Awaitable[T]], path: str | None = None) -> T:
        """`op(client)` through the SDK, at most `concurrency` at once, throttling waited out,
        failures mapped. A 401 from Graph (token revoked) gets one retry with a fresh token."""
        budget, renewed = CallBudget(self, path, self.endpoint.max_wait_s), False
        while True:
            if self._broken is not None:  # a fresh error each time: threads set its path
                raise type(self._broken)(str(self._broken), path)
            await budget.gate()
            client, started = self.client, time.monotonic()
            try:
                async with self.slots:
                    return await op(client)
            except APIError as exc:
                status = exc.response_status_code or 0
                if status in THROTTLED:
                    await budget.wait(exc.response_headers, status, time.monotonic() - started)
                    continue
                if status == 401 and not renewed:
                    renewed = True
                    if client is self.client:  # not renewed by a concurrent call already
                        self._connect()
                    continue
                raise to_sync_error(exc, path, self.creds.secrets) from exc
            except Exception as exc:  # everything leaves as a SyncError
                raise to_sync_error(exc, path, self.creds.secrets) from exc

    async def json(self, request: Callable[[Any], Any],
                   path: str | None = None) -> dict[str, Any]:
        """The JSON answer to `request(client)` (an SDK request builder's RequestInformation),
        sent through the SDK's adapter (auth, retries, error mapping) but not parsed into SDK
        models: those cost ~3 ms a driveItem."""
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        async def send(client: Any) -> dict[str, Any]:
            raw = await client.request_adapter.send_primitive_async(request(client), "bytes",
                                                                    {"XXX": ODataError})
            answer: dict[str, Any] = json.loads(raw) if raw else {}
            return answer

        return await self.call(send, path)

    async def fetch(self, method: str, url: str, path: str, *, stream: bool = False,
                    **kwargs: Any) -> httpx.Response:
        """A plain request to a pre-authenticated URL, throttling waited out. Non-2xx raises.
        With stream=True the caller holds a concurrency slot until it calls `finish()`."""
        budget, http = CallBudget(self, path, self.endpoint.max_wait_s), self.http
        assert http is not None  # opened with the session
        while True:
            await budget.gate()
            await self.slots.acquire()
            try:
                response = await http.send(http.build_request(method, url, **kwargs),
                                           stream=stream)
            except BaseException as exc:
                self.slots.release()
                if not isinstance(exc, Exception):
                    raise  # cancelled: not a failure of ours to map
                raise to_sync_error(exc, path) from exc
            if response.status_code in THROTTLED:
                await self.finish(response)
                await budget.wait(response.headers, response.status_code)
                continue
            if response.status_code >= 300:
                await self.finish(response)
                raise http_error(response, path)
            if not stream:
                await self.finish(response)
            return response

    async def finish(self, response: httpx.Response) -> None:
        """Close a response from `fetch` and give its concurrency slot back."""
        try:
            await response.aclose()
        finally:
            self.slots.release()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.run(self._aclose())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()

    async def _aclose(self) -> None:
        await self._close_all(self._retired + self._owned)
        await self._loop.shutdown_asyncgens()

    @staticmethod
    async def _close_all(owned: list[Any]) -> None:
        for thing in reversed(owned):
            try:
                await (thing.aclose() if isinstance(thing, httpx.AsyncClient) else thing.close())
            except Exception as exc:  # closing anyway
                log.debug("closing %s: %s", type(thing).__name__, exc)


# --- the admin API's check when a connector is saved ----------------------------------------

def _site_key(site_url: str) -> str:
    """https://contoso.sharepoint.com/sites/team[/Shared Documents/...] -> Graph's site key."""
    url = urllib.parse.urlsplit(site_url.strip())
    if url.scheme != "https" or not url.hostname:
        raise errors.ConfigInvalid("site_url", "must look like https://contoso.sharepoint.com"
                                               "/sites/team")
    parts = [p for p in urllib.parse.unquote(url.path).split("/") if p]
    if len(parts) >= 2 and parts[0].lower() in ("sites", "teams"):
        parts = parts[:2]  # a library or page URL pasted whole: keep the site's part
    return f"{url.hostname}:/{'/'.join(parts)}:" if parts else url.hostname


def _names(drive: Any) -> set[str]:
    """What an admin may call a library: its name, or the folder name in its URL."""
    names = {drive.name or "", (drive.additional_data or {}).get("displayName") or ""}
    if drive.web_url:
        names.add(urllib.parse.unquote(drive.web_url.rstrip("/").rsplit("/", 1)[-1]))
    return {n.lower() for n in names if n}


def _next_page(site_id: str, link: str) -> Callable[[Any], Awaitable[Any]]:
    """The request for the next page of a site's drives (`link`: the last page's nextLink)."""
    return lambda c: c.sites.by_site_id(site_id).drives.with_url(link).get()


async def _resolve(session: GraphSession, site_url: str, library: str) -> tuple[str, str]:
    key = _site_key(site_url)
    try:
        site = await session.call(lambda c: c.sites.by_site_id(key).get(), "")
    except (errors.NotFound, BadRequest) as exc:
        raise errors.ConfigInvalid("site_url", f"no SharePoint site at {site_url} ({exc})") \
            from None
    drives: list[Any] = []
    page = await session.call(lambda c: c.sites.by_site_id(site.id).drives.get())
    while True:
        drives += page.value or []
        if not page.odata_next_link:
            break
        page = await session.call(_next_page(site.id, page.odata_next_link))
    for drive in drives:
        if library.strip().lower() in _names(drive):
            return site.id, drive.id
    have = ", ".join(sorted(d.name for d in drives if d.name)) or "none"
    raise errors.ConfigInvalid("library", f"the site has no document library named {library!r};"
                                          f" it has: {have}")


def resolve_library(endpoint: GraphEndpoint, creds: GraphCredentials, site_url: str,
                    library: str) -> tuple[str, str]:
    """Blocking: (site_id, drive_id) of the document library `library` (its name, any case) of
    the site at `site_url`. AuthFailed for refused credentials, ConfigInvalid("site_url" |
    "library", ...) for what the tenant does not have, Transient when Graph is unreachable."""
    _site_key(site_url)  # a malformed URL needs no session
    session = GraphSession(endpoint, creds)
    try:
        return session.run(_resolve(session, site_url, library))
    finally:
        session.close()
