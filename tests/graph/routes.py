"""Graph v1.0 routes of the emulator: sites, drives, items, children, delta, content, uploads.
`path` arrives percent-decoded and without the /v1.0 prefix."""
import base64
import json
import re
import secrets
import time
import urllib.parse
from types import SimpleNamespace

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from .item_updates import create_folder, patch_item
from .model import Drive, check_name, iso

NAME = r"[^/]+"
OFFICE = (".docx", ".xlsx", ".pptx")
OFFICE_METADATA = b"<!-- SharePoint: ContentTypeId, _dlc_DocId -->"


def _tok(*parts) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _untok(token: str):
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except Exception:
        return None


async def handle(emu, req: Request, path: str) -> Response:
    raw_body = await req.body()
    with emu.t.lock:  # the tests mutate the model from their own thread
        return _handle(emu, req, path, raw_body)


def _handle(emu, req: Request, path: str, raw_body: bytes) -> Response:
    from .emulator import gerr
    t, q, meth = emu.t, req.query_params, req.method

    def count(route):
        emu.counts[route] += 1

    m = re.fullmatch(r"/sites/([^/:,]+):(/[^:]*?):?(/drives)?", path)
    if m and meth == "GET":
        count("site_by_path" if not m[3] else "site_drives")
        site = t.find_site(m[1], m[2])
        if site is None:
            return gerr(404, "itemNotFound", "Requested site could not be found")
        if site.denied:
            return _access_denied()
        return _drives(emu, site) if m[3] else JSONResponse(emu.site_json(site))
    m = re.fullmatch(r"/sites/([^/]+?)(/drives)?", path)
    if m and meth == "GET":
        count("site" if not m[2] else "site_drives")
        site = t.sites.get(m[1])
        if site is None and "," not in m[1]:  # /sites/{hostname}: the root site
            site = t.find_site(m[1], "/")
        if site is None:
            return gerr(404, "itemNotFound", "Requested site could not be found")
        if site.denied:
            return _access_denied()
        return _drives(emu, site) if m[2] else JSONResponse(emu.site_json(site))
    m = re.fullmatch(r"/drives/([^/]+)(/.*)?", path)
    if not m:
        count("not_found")
        return gerr(400, "BadRequest",
                    f"Resource not found for the segment '{path.split('/')[1]}'.")
    drive = t.drives.get(m[1])
    rest = m[2] or ""
    if drive is None:
        count("not_found")
        return gerr(404, "itemNotFound", "The drive could not be found.")
    if drive.site.denied:
        count("denied")
        return _access_denied()
    if rest == "" and meth == "GET":
        count("drive")
        return JSONResponse(emu.drive_json(drive))
    # delta: /root/delta, /items/root/delta(), /items/{id}/delta(token='x'), ?token=
    m = re.fullmatch(r"/(?:root|items/root|items/([^/]+))/delta(?:\(\)|\(token='([^']*)'\))?", rest)
    if m and meth == "GET":
        count("delta")
        emu.delta_by_drive[drive.id] += 1
        if m[1] and m[1] not in ("root", drive.root_id):
            return gerr(400, "invalidRequest",
                        "Delta is only supported on the root of a document library.")
        return _delta(emu, drive, m[2] if m[2] is not None else q.get("token"))
    # uploads by path: /items/{parent}:/{name}:/content and :/createUploadSession,
    # /root:/{path}:/...
    m = re.fullmatch(r"/(?:root|items/([^/:]+)):/(.+?):/(content|createUploadSession)", rest)
    if m:
        parent_id = m[1] if m[1] and m[1] != "root" else drive.root_id
        with t.lock:
            parent = drive.items.get(parent_id)
            if parent is None or parent.deleted or not parent.is_folder:
                count("not_found")
                return gerr(404, "itemNotFound", "The parent item could not be found.")
            for part in m[2].split("/"):
                why = check_name(part)
                if why:
                    return gerr(400, "invalidRequest", why)
            existing = t.resolve(drive, m[2], parent_id)
        if m[3] == "content" and meth == "PUT":
            count("upload_small")
            body = raw_body
            if len(body) > 250 * 1024 * 1024:
                return gerr(413, "invalidRequest", "Use an upload session for files over 250 MB.")
            if (r := _if_match(req, existing)) is not None:
                return r
            return commit(emu, {"drive": drive.id, "parent": parent_id, "path": m[2],
                                "if_match": None, "email": None,
                                "behavior": q.get("@microsoft.graph.conflictBehavior")}, body)
        if m[3] == "createUploadSession" and meth == "POST":
            count("create_upload_session")
            if (r := _if_match(req, existing)) is not None:
                return r
            body = json.loads(raw_body) if raw_body else {}
            behavior = (body.get("item") or {}).get("@microsoft.graph.conflictBehavior", "replace")
            if behavior == "fail" and existing is not None:
                return gerr(409, "nameAlreadyExists", "The specified item name already exists.")
            sid = secrets.token_urlsafe(24)
            expires = time.time() + 3600
            emu.sessions[sid] = {"drive": drive.id, "parent": parent_id, "path": m[2],
                                 "buf": bytearray(), "total": None, "expires": expires,
                                 "email": None,
                                 "if_match": req.headers.get("if-match"), "behavior": behavior}
            return JSONResponse({"uploadUrl": f"{emu.authority}/_upload/{sid}",
                                 "expirationDateTime": iso(expires),
                                 "nextExpectedRanges": ["0-"]})
    # children: /root/children, /items/{id}/children, /root:/{path}:/children, ...
    m = re.fullmatch(r"/(?:root|items/([^/:]+))(?::/(.+?):)?/children", rest)
    if m and meth in ("GET", "POST"):
        count("children" if meth == "GET" else "children_post")
        with t.lock:
            folder = _addressed(t, drive, m[1], m[2])
            if folder is None:
                count("not_found")
                return gerr(404, "itemNotFound", "The resource could not be found.")
            if meth == "POST":
                return create_folder(emu, drive, folder, raw_body)
            return _children(emu, req, drive, folder)
    # items: /root, /items/{id}, /items/root (the root's alias), each optionally :/{path}:
    m = re.fullmatch(r"/(?:root|items/([^/:]+))(?::/(.+?):?)?(/content)?", rest)
    if m and meth in ("GET", "DELETE", "PATCH"):
        with t.lock:
            item = _addressed(t, drive, m[1], m[2])
            if item is None:
                count("not_found")
                return gerr(404, "itemNotFound", "The resource could not be found.")
            if meth == "PATCH" and not m[3]:
                return patch_item(emu, req, drive, item, raw_body)
            if meth == "DELETE":
                return _delete(emu, req, drive, item, bool(m[3]))
            if m[3]:
                count("content")
                if item.is_folder:
                    return gerr(400, "invalidRequest", "Folders have no content.")
                url = emu.item_json(drive, item)["@microsoft.graph.downloadUrl"]
                return RedirectResponse(url, 302)
            count("item")
            return JSONResponse(select(emu.item_json(drive, item), q.get("$select")))
    count("not_found")
    return gerr(400, "BadRequest", f"Unsupported request {meth} {rest}.")


def _access_denied() -> Response:
    """What Graph answers an app with Sites.Selected on a site nobody granted it."""
    from .emulator import gerr
    return gerr(403, "accessDenied", "Access denied")


def select(item: dict, fields: str | None) -> dict:
    """`$select`: only the properties named (annotations such as the download URL included
    only when named); none named: everything."""
    if not fields:
        return item
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    return {k: v for k, v in item.items() if k in wanted}


def _children(emu, req: Request, drive: Drive, folder) -> Response:
    """A folder's children by name, `children_page_size` (Graph: 200) or `$top` a page; the
    nextLink keeps the query (`$select`, `$top`) and adds a `$skiptoken`."""
    from .emulator import gerr
    q = req.query_params
    try:
        top = min(int(q.get("$top") or emu.children_page_size), 999)
    except ValueError:
        return gerr(400, "invalidRequest", "Invalid $top.")
    token = _untok(q["$skiptoken"]) if "$skiptoken" in q else [folder.id, 0]
    if not isinstance(token, list) or len(token) != 2 or token[0] != folder.id:
        return gerr(400, "invalidRequest", "Invalid $skiptoken.")
    kids = sorted(drive.children(folder.id), key=lambda i: i.name.lower())
    offset = int(token[1])
    out = {"@odata.context": f"{emu.graph_base}/$metadata#Collection(driveItem)",
           "value": [select(emu.item_json(drive, i), q.get("$select"))
                     for i in kids[offset:offset + top]]}
    if offset + top < len(kids):
        keep = urllib.parse.urlencode({k: v for k, v in q.items() if k != "$skiptoken"})
        out["@odata.nextLink"] = (f"{emu.graph_base}/drives/{drive.id}/items/{folder.id}"
                                  f"/children?{keep}{'&' if keep else ''}"
                                  f"$skiptoken={_tok(folder.id, offset + top)}")
    return JSONResponse(out)


def _delete(emu, req: Request, drive: Drive, item, content: bool) -> Response:
    """DELETE a driveItem (to the recycle bin, with its subtree): 204; If-Match -> 412 (a
    folder's eTag changes when a child is added, removed or renamed: model.py)."""
    from .emulator import gerr
    emu.counts["delete"] += 1
    if content:
        return gerr(405, "invalidRequest", "DELETE is not supported on /content.")
    if item.id == drive.root_id:
        return gerr(403, "accessDenied", "The root of a document library cannot be deleted.")
    path = emu.t.path_of(drive, item).lstrip("/")
    if (arrival := emu.put_before_delete.pop((drive.id, path), None)) is not None:
        # a user saves a file into the folder just before our DELETE (tests' race, made certain)
        emu.t.put_file(drive, f"{path}/{arrival[0]}", arrival[1])
    if req.headers.get("if-match") and (r := _if_match(req, item)) is not None:
        return r
    emu.t.delete(drive, path)
    return Response(status_code=204)


def _drives(emu, site) -> Response:
    return JSONResponse({"@odata.context": f"{emu.graph_base}/$metadata#drives",
                         "value": [emu.drive_json(d) for d in site.drives]})


def _if_match(req: Request, existing) -> Response | None:
    from .emulator import gerr
    want = req.headers.get("if-match")
    if want is None or want == "*" and existing is not None:
        return None
    if existing is None or existing.deleted:
        return gerr(412, "preconditionFailed",
                    "The resource has changed since the caller last read it.")
    etag = f'"{{{existing.etag_guid}}},{existing.version}"'
    ctag = f'"c:{{{existing.etag_guid}}},{existing.content_version}"'
    if want not in (etag, ctag):
        return gerr(412, "preconditionFailed", "ETag does not match current item's value")
    return None


def commit(emu, s: dict, data: bytes) -> Response:
    from .emulator import gerr
    t = emu.t
    with t.lock:
        drive = t.drives[s["drive"]]
        existing = t.resolve(drive, s["path"], s["parent"])
        if (edit := emu.edit_before_commit.pop((drive.id, s["path"]), None)) is not None:
            # a user saves the file while our upload is in flight (tests' race, made certain)
            existing, _ = t.put_file(drive, s["path"], edit, None, parent_id=s["parent"])
        # the If-Match of the session is checked again at commit: the item may have changed
        # meanwhile
        if (r := _if_match(SimpleNamespace(headers={"if-match": s["if_match"]}),
                           existing)) is not None:
            return r
        # created while the session was open
        if existing is not None and s.get("behavior") == "fail":
            return gerr(409, "nameAlreadyExists", "The specified item name already exists.")
        if existing is not None and existing.is_folder:
            return gerr(409, "nameAlreadyExists", "A folder with that name exists.")
        if emu.rewrite_office and s["path"].lower().endswith(OFFICE):
            data += OFFICE_METADATA  # SharePoint stores its own properties in Office files
        item, created = t.put_file(drive, s["path"], data, s["email"], parent_id=s["parent"])
        return JSONResponse(emu.item_json(drive, item), 201 if created else 200)


def _delta(emu, drive: Drive, token: str | None) -> Response:
    from .emulator import gerr
    t = emu.t
    link = f"{emu.graph_base}/drives/{drive.id}/root/delta?token="
    with t.lock:
        if token == "latest":
            return JSONResponse({"value": [],
                                 "@odata.deltaLink": link + _tok("d", drive.epoch, drive.seq)})
        if token:
            parsed = _untok(token)
            if not isinstance(parsed, list) or parsed[0] not in ("d", "p"):
                return gerr(400, "invalidRequest", "Invalid delta token.")
            if parsed[0] == "p":
                cursor = emu.cursors.get(parsed[1])
                if cursor is None:
                    return gerr(410, "resyncRequired", "The page token has expired; resync.")
                epoch, items, snap, offset = *cursor, parsed[2]
                cid = parsed[1]
            else:
                epoch, since = parsed[1], parsed[2]
                if epoch != drive.epoch or since > drive.seq:
                    return gerr(410, "resyncRequired",
                                "Resync required. Replace any local items with the server's "
                                "version (including deletes) if you're sure that the service "
                                "was up to date with your local changes when you last sync'd. "
                                "Upload any local changes that the server doesn't know about.")
                items, snap, offset, cid = None, drive.seq, 0, None
        else:
            epoch, since, items, snap, offset, cid = drive.epoch, 0, None, drive.seq, 0, None
        if epoch != drive.epoch:
            return gerr(410, "resyncRequired", "Resync required.")
        if items is None:
            changed = [i for i in drive.items.values()
                       if (i.seq > since if since else not i.deleted)]
            changed.sort(key=lambda i: (t.path_of(drive, i).count("/") if not i.deleted else 0,
                                        i.seq))
            kids = drive.children_map()
            items = [emu.item_json(drive, i, for_delta=True, kids=kids) for i in changed]
        page = items[offset:offset + emu.page_size]
        out = {"@odata.context": f"{emu.graph_base}/$metadata#Collection(driveItem)", "value": page}
        if offset + emu.page_size < len(items):
            if cid is None:
                cid = secrets.token_urlsafe(12)
                emu.cursors[cid] = (epoch, items, snap)
            out["@odata.nextLink"] = link + _tok("p", cid, offset + emu.page_size)
        else:
            out["@odata.deltaLink"] = link + _tok("d", drive.epoch, snap)
        return JSONResponse(out)


def _addressed(t, drive, item_id: str | None, path: str | None):
    """The item a URL names (an id or the root, then optionally a path under it); None when
    there is none or it is deleted."""
    item = drive.items.get(drive.root_id if item_id in (None, "root") else item_id)
    if item is not None and path:
        item = t.resolve(drive, path, item.id)
    return None if item is None or item.deleted else item
