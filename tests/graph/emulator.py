"""A Microsoft Graph + Entra ID token endpoint emulator (Starlette app). Routing is done on the
raw, percent-encoded path so that `sites/host%3A%2Fsites%2Fx%3A` and `items/ID%3A%2Fname%3A/...`
(what the SDK sends) resolve like their unencoded forms. Unknown routes answer 404 with Graph's
error shape."""
import asyncio
import base64
import json
import mimetypes
import re
import secrets
import threading
import time
import urllib.parse
from collections import Counter

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from .model import Drive, Item, Tenant, iso

CHUNK_UNIT = 327_680
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def gerr(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "innerError": {
        "date": iso(time.time()), "request-id": secrets.token_hex(16)}}}, status, headers=headers)


def aad_err(status: int, error: str, code: int, text: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": f"AADSTS{code}: {text}",
                         "error_codes": [code], "timestamp": iso(time.time()),
                         "trace_id": secrets.token_hex(16),
                         "correlation_id": secrets.token_hex(16)}, status)


def b64url_decode(s: str) -> bytes:
    s = s.rstrip("=")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Emulator:
    def __init__(self, tenant: Tenant):
        self.t = tenant
        self.authority = ""  # set once the port is known
        self.page_size = 50  # delta
        self.delta_by_drive: Counter = Counter()  # delta pages served, by drive id
        self.delta_held: tuple[str, int] | None = None  # (drive id, pages served): more wait
        self.delta_released = threading.Event()  # (`GraphHandle.hold_delta`)
        self.children_page_size = 200  # Graph's default page of a folder's children
        self.throttle_left, self.retry_after_s = 0, 1
        self.download_throttle_left, self.download_retry_after_s = 0, 1
        self.corrupt_downloads = 0  # the next n downloads serve one flipped byte
        # the next downloads break their connection after these many bytes of body, one each
        self.download_breaks: list[int] = []
        self.edit_before_commit: dict[tuple[str, str], bytes] = {}  # (drive, path) -> new bytes
        # (drive, folder path) -> (name, bytes): a file saved into it as our DELETE of it arrives
        self.put_before_delete: dict[tuple[str, str], tuple[str, bytes]] = {}
        # uploaded .docx/.xlsx/.pptx get bytes appended, as SharePoint does
        self.rewrite_office = False
        self.counts: Counter = Counter()  # by route (Graph), or kind (token, download, ...)
        self.api_requests = 0  # every request to the Graph API (/v1.0), refused ones too
        self.download_log: list[tuple[float, int]] = []  # (time.monotonic(), status) each
        # User-Agent headers seen, by host kind (graph, download, upload, token)
        self.user_agents: dict[str, set[str]] = {}
        # page token -> (epoch, items json, seq)
        self.cursors: dict[str, tuple[int, list, int]] = {}
        self.downloads: dict[str, tuple[bytes, float]] = {}
        self.downloads_pruned_at = 100_000
        # pre-authenticated URLs made invalid before their hour: token -> status they answer
        self.dead_downloads: dict[str, int] = {}
        self.expire_downloads_after: tuple[int, int] | None = None  # (downloads left, status)
        self.sessions: dict[str, dict] = {}
        self.in_flight = self.max_in_flight = 0  # Graph + download requests being served
        self._app = Starlette(routes=[Route("/{p:path}", self.dispatch,
                                            methods=["GET", "POST", "PUT", "DELETE", "PATCH"])])

    async def app(self, scope, receive, send) -> None:
        """The ASGI app: counts Graph and download requests in flight until their last byte."""
        tracked = scope["type"] == "http" and scope["path"].startswith(("/v1.0/", "/_layouts/"))
        if tracked:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._app(scope, receive, send)
        finally:
            if tracked:
                self.in_flight -= 1

    @property
    def graph_base(self) -> str:
        return self.authority + "/v1.0"

    # ----- serialization -----
    def item_json(self, d: Drive, i: Item, for_delta: bool = False,
                  kids: dict[str, list[Item]] | None = None) -> dict:
        """`kids`: the drive's `children_map`, where many items are answered at once."""
        parent = {"driveId": d.id, "driveType": "documentLibrary"}
        if i.parent_id:
            parent["id"] = i.parent_id
            if not for_delta:
                parent["path"] = (f"/drives/{d.id}/root:"
                                  + self.t.path_of(d, d.items[i.parent_id]).rstrip("/"))
        if i.deleted:
            return {"id": i.id, "parentReference": parent, "deleted": {},
                    ("folder" if i.is_folder else "file"): {}}
        out = {"id": i.id, "name": i.name, "eTag": f'"{{{i.etag_guid}}},{i.version}"',
               "cTag": f'"c:{{{i.etag_guid}}},{i.content_version}"',
               "createdDateTime": iso(i.created), "lastModifiedDateTime": iso(i.modified),
               "webUrl": d.site.web_url + "/" + urllib.parse.quote(d.name + self.t.path_of(d, i)),
               "createdBy": {"user": i.created_by},
               "lastModifiedBy": {"user": i.modified_by or i.created_by}, "parentReference": parent,
               "fileSystemInfo": {"createdDateTime": iso(i.created),
                                  "lastModifiedDateTime": iso(i.modified)}}
        if i.parent_id is None:
            out["root"] = {}
        if i.is_folder:
            kids = d.children_map() if kids is None else kids
            out["folder"] = {"childCount": len(kids.get(i.id, ()))}
            size, below = 0, list(kids.get(i.id, ()))
            while below:
                x = below.pop()
                size += len(x.data)
                below += kids.get(x.id, ())
            out["size"] = size
        else:
            out["size"] = len(i.data)
            out["file"] = {"mimeType": (mimetypes.guess_type(i.name)[0]
                                        or "application/octet-stream"),
                           "hashes": {"quickXorHash": i.hash}}
            tok = secrets.token_urlsafe(24)
            if len(self.downloads) > self.downloads_pruned_at:  # drop expired URLs
                self.downloads = {k: v for k, v in self.downloads.items() if v[1] > time.time()}
                # at most once as many again are issued (a big library's live URLs are many)
                self.downloads_pruned_at = max(100_000, 2 * len(self.downloads))
            self.downloads[tok] = (i.data, time.time() + 3600)
            out["@microsoft.graph.downloadUrl"] = (
                f"{self.authority}/_layouts/15/download.aspx?tempauth={tok}")
        return out

    def site_json(self, s) -> dict:
        return {"id": s.id, "name": s.path.rstrip("/").rsplit("/", 1)[-1] or s.hostname,
                "displayName": s.path.rstrip("/").rsplit("/", 1)[-1] or s.hostname,
                "webUrl": s.web_url,
                "createdDateTime": iso(s.created), "siteCollection": {"hostname": s.hostname}}

    def drive_json(self, d: Drive) -> dict:
        return {"id": d.id, "name": d.name, "driveType": "documentLibrary",
                "createdDateTime": iso(d.created),
                "webUrl": f"{d.site.web_url}/{urllib.parse.quote(d.name)}",
                "lastModifiedDateTime": iso(max(i.modified for i in d.items.values()))}

    # ----- dispatch -----
    async def dispatch(self, req: Request) -> Response:
        raw = req.scope.get("raw_path", req.url.path.encode()).decode().split("?", 1)[0]
        path = urllib.parse.unquote(raw)
        kind = "graph" if path.startswith("/v1.0/") else "download" if \
            path.startswith("/_layouts/") else "upload" if path.startswith("/_upload/") else "token"
        self.user_agents.setdefault(kind, set()).add(req.headers.get("user-agent", ""))
        m = re.fullmatch(r"/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token)",
                         path)
        if m:
            if m[1] != self.t.tenant_id:
                self.counts["aad_bad_tenant"] += 1
                return aad_err(400, "invalid_request", 90002, f"Tenant '{m[1]}' not found.")
            if m[2].startswith("v2.0") and req.method == "GET":
                self.counts["openid"] += 1
                base = f"{self.authority}/{self.t.tenant_id}"
                return JSONResponse({"token_endpoint": f"{base}/oauth2/v2.0/token",
                                     "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                                     "issuer": f"{base}/v2.0",
                                     "jwks_uri": f"{base}/discovery/v2.0/keys",
                                     "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                                               "private_key_jwt"]})
            if m[2].startswith("oauth2") and req.method == "POST":
                self.counts["token"] += 1
                return await self.token(req)
        if path.startswith("/_layouts/15/download.aspx") and req.method == "GET":
            self.counts["download"] += 1
            answer = self.download(req)
            self.download_log.append((time.monotonic(), answer.status_code))
            return answer
        if path.startswith("/_upload/"):
            self.counts["upload_chunk"] += 1
            return await self.upload_chunk(req, path[len("/_upload/"):])
        if path.startswith("/v1.0/"):
            return await self.graph(req, path[len("/v1.0"):])
        self.counts["not_found"] += 1
        return gerr(404, "itemNotFound", f"Resource not found for the segment '{path}'.")

    # ----- Entra ID -----
    async def token(self, req: Request) -> Response:
        form = {k: v[0] for k, v in urllib.parse.parse_qs((await req.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return aad_err(400, "unsupported_grant_type", 70003,
                           "The app requested an unsupported grant type.")
        if form.get("client_id") != self.t.client_id:
            return aad_err(400, "unauthorized_client", 700016,
                           f"Application with identifier '{form.get('client_id')}' was not found "
                           f"in the directory '{self.t.tenant_id}'.")
        scope = form.get("scope", "")
        if GRAPH_SCOPE not in scope.split():
            return aad_err(400, "invalid_scope", 1002012,
                           f"The provided value for scope {scope} is not valid.")
        if "client_secret" in form:
            with self.t.lock:
                ok = form["client_secret"] in self.t.secrets
            if not ok:
                return aad_err(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the secret being sent in "
                               "the request is the client secret value, not the client secret ID, "
                               f"for a secret added to app '{self.t.client_id}'.")
        elif (form.get("client_assertion_type")
              == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
            why = self.check_assertion(form.get("client_assertion", ""), str(req.url).split("?")[0])
            if why:
                return aad_err(401, "invalid_client", 700027,
                               f"Client assertion failed signature validation: {why}")
        else:
            return aad_err(401, "invalid_client", 7000218,
                           "The request body must contain the following "
                           "parameter: 'client_assertion' or 'client_secret'.")
        token, lifetime = self.t.issue_token()
        return JSONResponse({"token_type": "Bearer", "expires_in": lifetime,
                             "ext_expires_in": lifetime, "access_token": token})

    def check_assertion(self, assertion: str, token_url: str) -> str | None:
        try:
            h64, p64, s64 = assertion.split(".")
            header, claims = json.loads(b64url_decode(h64)), json.loads(b64url_decode(p64))
            sig = b64url_decode(s64)
        except Exception as e:
            return f"malformed ({e})"
        cert = self.t.app_cert
        x5t, x5t256 = (str(header[k]).rstrip("=") if k in header else None
                       for k in ("x5t", "x5t#S256"))
        if (x5t not in (None, cert.x5t) or x5t256 not in (None, cert.x5t_s256)
                or x5t == x5t256 is None):
            return "unknown certificate thumbprint"
        alg = header.get("alg")
        pad = {"RS256": padding.PKCS1v15(),
               "PS256": padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                    salt_length=padding.PSS.AUTO)}.get(alg)
        if pad is None:
            return f"unsupported alg {alg}"
        try:
            cert.certificate.public_key().verify(sig, f"{h64}.{p64}".encode(), pad, hashes.SHA256())
        except InvalidSignature:
            return "bad signature"
        now = time.time()
        if claims.get("iss") != self.t.client_id or claims.get("sub") != self.t.client_id:
            return "iss/sub must be the client id"
        if claims.get("aud") != token_url:
            return f"aud {claims.get('aud')!r} is not {token_url!r}"
        if not (claims.get("nbf", 0) - 300 <= now < claims.get("exp", 0) + 300):
            return "expired or not yet valid"
        return None

    # ----- Graph -----
    async def graph(self, req: Request, path: str) -> Response:
        self.api_requests += 1  # every Graph API request, whatever it is answered
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not self.t.token_valid(auth[7:]):
            self.counts["unauthorized"] += 1
            msg = ("Access token is empty." if not auth
                   else "Lifetime validation failed, the token is expired.")
            return gerr(401, "InvalidAuthenticationToken", msg,
                        {"WWW-Authenticate": 'Bearer realm="", authorization_uri='
                         '"https://login.microsoftonline.com/common/oauth2/authorize"'})
        if self.throttle_left > 0:
            self.throttle_left -= 1
            self.counts["throttled"] += 1
            return gerr(429, "activityLimitReached", "The request has been throttled",
                        {"Retry-After": str(self.retry_after_s)})
        if (held := self.delta_held) is not None and "/delta" in path and \
                path.startswith(f"/drives/{held[0]}/") and \
                self.delta_by_drive[held[0]] >= held[1]:
            await asyncio.to_thread(self.delta_released.wait)  # unanswered till released
        from . import routes
        return await routes.handle(self, req, path)

    def expire_download_urls(self, status: int) -> None:
        with self.t.lock:
            self.dead_downloads.update(dict.fromkeys(self.downloads, status))
            self.downloads.clear()

    def download(self, req: Request) -> Response:
        tempauth = req.query_params.get("tempauth", "")
        got = self.downloads.get(tempauth)
        dead = self.dead_downloads.get(tempauth)
        if dead == 403:
            return gerr(403, "accessDenied", "Access denied.")
        if dead == 404:
            return gerr(404, "itemNotFound", "The file could not be found.")
        if got is None or got[1] < time.time():
            return gerr(401, "unauthenticated", "Invalid or expired tempauth token.")
        if self.expire_downloads_after is not None:
            left, status = self.expire_downloads_after
            self.expire_downloads_after = (left - 1, status) if left > 1 else None
            if left <= 1:  # this one is served; every URL handed out so far dies now
                self.expire_download_urls(status)
        if self.download_throttle_left > 0:
            self.download_throttle_left -= 1
            self.counts["download_throttled"] += 1
            return gerr(429, "activityLimitReached", "The request has been throttled",
                        {"Retry-After": str(self.download_retry_after_s)})
        data = got[0]
        if self.corrupt_downloads > 0 and data:
            self.corrupt_downloads -= 1
            data = bytes([data[0] ^ 0xFF]) + data[1:]  # same size, other bytes
        size, start, end, status = len(data), 0, len(data) - 1, 200
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        rng = req.headers.get("range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (not m[1] and not m[2]):
                return gerr(416, "invalidRange", f"Bad range {rng}")
            if m[1]:
                start, end = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1)
            else:
                start = max(size - int(m[2]), 0)
            if start >= size or start > end:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)

        cut = start + self.download_breaks.pop(0) if self.download_breaks else None

        async def body():  # small slices: the tests measure the client's memory, not ours
            for off in range(start, end + 1, 1 << 18):
                if cut is not None and off >= cut:
                    raise ConnectionAbortedError("the emulator breaks this download")
                yield data[off:min(off + (1 << 18), end + 1, cut or end + 1)]
        return StreamingResponse(body(), status, headers=headers)

    async def upload_chunk(self, req: Request, sid: str) -> Response:
        s = self.sessions.get(sid)
        if s is None or s["expires"] < time.time():
            return gerr(404, "itemNotFound", "The upload session was not found or has expired.")
        if req.method == "DELETE":
            del self.sessions[sid]
            return Response(status_code=204)
        if req.method == "GET":
            return JSONResponse({"expirationDateTime": iso(s["expires"]),
                                 "nextExpectedRanges": [f"{len(s['buf'])}-"]})
        if req.method != "PUT":
            return gerr(405, "invalidRequest", "Method not allowed on an upload session.")
        if "authorization" in req.headers:
            return gerr(401, "invalidRequest",
                        "Do not send an Authorization header to an uploadUrl.")
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", req.headers.get("content-range", ""))
        body = await req.body()
        if not m:
            return gerr(400, "invalidRequest", "Missing or malformed Content-Range.")
        a, b, total = int(m[1]), int(m[2]), int(m[3])
        if s["total"] is None:
            s["total"] = total
        got = len(s["buf"])
        if total != s["total"] or b - a + 1 != len(body) or b >= total:
            return gerr(400, "invalidRequest",
                        "Content-Range does not match the body or the declared size.")
        if a != got:
            return gerr(416, "invalidRange", f"Expected a fragment starting at {got}.")
        if len(body) > 60 * 1024 * 1024:
            return gerr(413, "invalidRequest", "Fragments must be smaller than 60 MiB.")
        if b + 1 < total and len(body) % CHUNK_UNIT:
            return gerr(400, "invalidRequest",
                        "Fragments other than the last must be multiples of 320 KiB.")
        s["buf"] += body
        if len(s["buf"]) < total:
            return JSONResponse({"expirationDateTime": iso(s["expires"]),
                                 "nextExpectedRanges": [f"{len(s['buf'])}-"]}, 202)
        del self.sessions[sid]
        from . import routes
        return routes.commit(self, s, bytes(s["buf"]))
