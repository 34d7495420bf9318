"""Runs the Graph emulator with uvicorn over TLS in a background thread, and the handle the tests
use to shape the tenant. `graph_client(credential)` wires msgraph-sdk to it as the facts file
says."""
import socket
import ssl
import threading
import time
import uuid
from pathlib import Path

import httpx
import uvicorn

from .certs import make_app_cert, make_tls
from .emulator import GRAPH_SCOPE, Emulator
from .model import Drive, Site, Tenant


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GraphHandle:
    def __init__(self, directory: Path, tenant_id: str | None = None, client_id: str | None = None):
        self.tls = make_tls(directory)
        self.app_cert = make_app_cert(directory)
        self.ca_pem = self.tls.ca_pem
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.client_id = client_id or str(uuid.uuid4())
        self.client_secret = "s3cr3t~" + uuid.uuid4().hex
        self.cert_path = self.app_cert.key_and_cert_pem  # PEM key + cert, for CertificateCredential
        self.tenant = Tenant(self.tenant_id, self.client_id, self.client_secret, self.app_cert,
                             default_user="admin@contoso.onmicrosoft.com")
        self.emu = Emulator(self.tenant)
        self.port = _free_port()
        self.authority = f"https://127.0.0.1:{self.port}"
        self.graph_base = self.authority + "/v1.0"
        self.emu.authority = self.authority
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -----
    def start(self) -> "GraphHandle":
        config = uvicorn.Config(self.emu.app, host="127.0.0.1", port=self.port, log_level="warning",
                                ssl_certfile=self.tls.server_cert, ssl_keyfile=self.tls.server_key,
                                lifespan="off", access_log=False, interface="asgi3")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="graph-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("Graph emulator did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # keep-alive connections need no goodbye
            self._thread.join(10)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_pem)

    # ----- shaping the tenant -----
    def add_site(self, hostname: str, path: str) -> Site:
        return self.tenant.add_site(hostname, path)

    def add_library(self, site: Site, name: str) -> Drive:
        return self.tenant.add_library(site, name)

    def put_file(self, drive: Drive, path: str, data: bytes, created_by_email: str | None = None,
                 modified_by_email: str | None = None):
        return self.tenant.put_file(drive, path, data, created_by_email, modified_by_email)[0]

    def mkdir(self, drive: Drive, path: str, created_by_email: str | None = None):
        return self.tenant.ensure_folder(drive, path, created_by_email)

    def delete(self, drive: Drive, path: str) -> None:
        self.tenant.delete(drive, path)

    def move(self, drive: Drive, old: str, new: str):
        return self.tenant.move(drive, old, new)

    rename = move

    def remove_library(self, drive: Drive) -> None:
        """The library is deleted: its drive id answers 404 from then on."""
        self.tenant.remove_library(drive)

    def set_modified(self, drive: Drive, path: str, when: float):
        """lastModifiedDateTime set by hand (seconds since 1970; Graph keeps whole seconds)."""
        return self.tenant.set_modified(drive, path, when)

    def item(self, drive: Drive, path: str):
        return self.tenant.resolve(drive, path)

    def etag(self, drive: Drive, path: str) -> str:
        i = self.tenant.resolve(drive, path)
        return f'"{{{i.etag_guid}}},{i.version}"'

    def deny_site(self, site: Site, denied: bool = True) -> None:
        """The app loses (or gets back) its Sites.Selected grant on `site`: 403 accessDenied to
        the site, its drives and their items, as Graph answers."""
        with self.tenant.lock:
            site.denied = denied

    def revoke_secret(self) -> None:
        with self.tenant.lock:
            self.tenant.secrets.clear()

    def restore_secret(self, new_secret: str) -> None:
        with self.tenant.lock:
            self.tenant.secrets = {new_secret}
            self.client_secret = new_secret

    def revoke_tokens(self) -> None:
        with self.tenant.lock:
            self.tenant.tokens.clear()

    def set_token_lifetime(self, seconds: int) -> None:
        self.tenant.token_lifetime_s = seconds

    def throttle(self, n: int, retry_after_s: int = 1) -> None:
        with self.tenant.lock:
            self.emu.throttle_left, self.emu.retry_after_s = n, retry_after_s

    def throttle_downloads(self, n: int, retry_after_s: int = 1) -> None:
        """The next n download-URL GETs answer 429 with Retry-After (SharePoint does)."""
        with self.tenant.lock:
            self.emu.download_throttle_left, self.emu.download_retry_after_s = n, retry_after_s

    def corrupt_next_download(self, n: int = 1) -> None:
        """The next n downloads serve bytes that do not match the item's hash (same size)."""
        with self.tenant.lock:
            self.emu.corrupt_downloads = n

    def break_downloads(self, *after: int) -> None:
        """The next downloads break their connection (the network failing) after these many
        bytes of their body, one number each."""
        with self.tenant.lock:
            self.emu.download_breaks = list(after)

    @property
    def rewrite_office(self) -> bool:
        """While True, uploaded .docx/.xlsx/.pptx are stored with metadata appended (SharePoint
        does): the item's size and hash differ from the bytes sent."""
        return self.emu.rewrite_office

    @rewrite_office.setter
    def rewrite_office(self, on: bool) -> None:
        with self.tenant.lock:
            self.emu.rewrite_office = on

    def edit_during_next_upload(self, drive: Drive, path: str, data: bytes) -> None:
        """Someone saves `path` with `data` while our next upload of it is in flight: the
        edit lands just before that upload commits."""
        self.emu.edit_before_commit[(drive.id, path)] = data

    def put_during_next_delete(self, drive: Drive, folder: str, name: str, data: bytes) -> None:
        """Someone saves `folder/name` just as our next DELETE of `folder` arrives: the file
        lands between our read of the folder and the DELETE."""
        self.emu.put_before_delete[(drive.id, folder)] = (name, data)

    def hide_from_delta(self, *items) -> None:
        """The items' last changes (`put_file`, `delete`, `move`: pass the item they touched) are
        never reported to a delta link, as Graph's change feed has been seen to miss changes
        (users of Elastic's connectors: #1822, #3994); a full enumeration still lists the
        library as it is."""
        with self.tenant.lock:
            for item in items:
                item.seq = 0

    def hold_delta(self, drive: Drive, after: int | None) -> None:
        """The drive's delta pages past the first `after` served are held unanswered until
        `hold_delta(drive, None)`: a listing caught midway."""
        if after is None:
            self.emu.delta_held = None
            self.emu.delta_released.set()
        else:
            self.emu.delta_released.clear()
            self.emu.delta_held = (drive.id, after)

    def delta_pages(self, drive: Drive) -> int:
        """The drive's delta pages served so far."""
        return self.emu.delta_by_drive[drive.id]

    def expire_delta_tokens(self) -> None:
        with self.tenant.lock:
            for d in self.tenant.drives.values():
                d.epoch += 1
            self.emu.cursors.clear()

    def expire_download_urls(self, status: int = 401, after: int = 0) -> None:
        """Every download URL handed out so far stops working, now or once `after` more
        downloads were served: it answers 401 (its hour is over), 403 (the app's access was
        revoked) or 404 (the file is gone)."""
        with self.tenant.lock:
            if after:
                self.emu.expire_downloads_after = (after, status)
            else:
                self.emu.expire_download_urls(status)

    def request_counts(self) -> dict[str, int]:
        """Requests by host kind: `graph` (every Graph API request, answered or refused),
        `download` (pre-authenticated download URLs), `upload` (upload-session chunks),
        `token` (Entra ID: token and OpenID configuration requests)."""
        c = self.emu.counts
        return {"graph": self.emu.api_requests, "download": c["download"],
                "upload": c["upload_chunk"],
                "token": c["token"] + c["openid"] + c["aad_bad_tenant"]}

    def user_agents(self) -> dict[str, set[str]]:
        """The User-Agent headers seen so far, by host kind (as `request_counts`)."""
        with self.tenant.lock:
            return {kind: set(agents) for kind, agents in self.emu.user_agents.items()}

    @property
    def page_size(self) -> int:
        return self.emu.page_size

    @page_size.setter
    def page_size(self, n: int) -> None:
        self.emu.page_size = n

    @property
    def children_page_size(self) -> int:
        return self.emu.children_page_size

    @children_page_size.setter
    def children_page_size(self, n: int) -> None:
        self.emu.children_page_size = n

    def counts(self) -> dict[str, int]:
        return dict(self.emu.counts)

    def reset_counts(self) -> None:
        self.emu.counts.clear()
        self.emu.api_requests = 0

    @property
    def max_in_flight(self) -> int:
        """Most Graph + download requests served at once since `reset_in_flight()`."""
        return self.emu.max_in_flight

    def reset_in_flight(self) -> None:
        self.emu.max_in_flight = self.emu.in_flight

    # ----- client wiring (what the connector must do, per the facts file) -----
    def secret_credential(self, secret: str | None = None):
        from azure.identity.aio import ClientSecretCredential
        return ClientSecretCredential(self.tenant_id, self.client_id, secret or self.client_secret,
                                      authority=self.authority, disable_instance_discovery=True,
                                      connection_verify=self.ca_pem)

    def certificate_credential(self):
        from azure.identity.aio import CertificateCredential
        return CertificateCredential(self.tenant_id, self.client_id,
                                     certificate_path=self.cert_path,
                                     authority=self.authority, disable_instance_discovery=True,
                                     connection_verify=self.ca_pem)

    def graph_client(self, credential):
        return make_graph_client(credential, self.graph_base, self.ca_pem)


def make_graph_client(credential, graph_base: str, ca_pem: str):
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory
    host = httpx.URL(graph_base).host
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE],
                                               allowed_hosts=[host])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_pem), timeout=60))
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = graph_base.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)
