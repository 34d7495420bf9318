"""Graph v1.0 item updates of the emulator, as Microsoft documents them: a driveItem's PATCH (a
rename and/or a move: `name`, `parentReference.id`; If-Match; the conflict behaviour "fail"
unless the `@microsoft.graph.conflictBehavior` query parameter says "replace") and a folder's
creation (POST to a folder's children with a `folder` facet; conflict behaviour "fail" by
default, "replace" or "rename" on request). A rename or move changes the eTag, never the cTag
(the content is the same)."""
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .model import Drive, check_name


def patch_item(emu, req: Request, drive: Drive, item, raw_body: bytes) -> Response:
    from .emulator import gerr
    from .routes import _if_match
    t = emu.t
    emu.counts["patch"] += 1
    body = _json(raw_body)
    if body is None:
        return gerr(400, "invalidRequest", "The request body is not valid JSON.")
    if item.id == drive.root_id:
        return gerr(400, "invalidRequest", "The root of a document library cannot be changed.")
    if req.headers.get("if-match") and (r := _if_match(req, item)) is not None:
        return r
    name = body.get("name", item.name)
    if why := check_name(name):
        return gerr(400, "invalidRequest", why)
    parent_id = (body.get("parentReference") or {}).get("id") or item.parent_id
    parent = drive.items.get(parent_id)
    if parent is None or parent.deleted or not parent.is_folder:
        return gerr(404, "itemNotFound", "The parent item could not be found.")
    if parent.id == item.id or parent in t.descendants(drive, item):
        return gerr(400, "invalidRequest", "An item cannot be moved into itself.")
    taken = next((c for c in drive.children(parent.id)
                  if c.name.lower() == name.lower() and c.id != item.id), None)
    if taken is not None:
        if req.query_params.get("@microsoft.graph.conflictBehavior") != "replace":
            return gerr(409, "nameAlreadyExists", "The specified item name already exists.")
        t.delete(drive, t.path_of(drive, taken))
    new = (t.path_of(drive, parent).rstrip("/") + "/" + name).lstrip("/")
    t.move(drive, t.path_of(drive, item).lstrip("/"), new)
    return JSONResponse(emu.item_json(drive, item))


def create_folder(emu, drive: Drive, parent, raw_body: bytes) -> Response:
    from .emulator import gerr
    t = emu.t
    emu.counts["create_folder"] += 1
    body = _json(raw_body)
    if body is None or "folder" not in body or not isinstance(body.get("name"), str):
        return gerr(400, "invalidRequest", "A folder needs a name and a folder facet.")
    if not parent.is_folder:
        return gerr(400, "invalidRequest", "Children can only be added to a folder.")
    name = body["name"]
    if why := check_name(name):
        return gerr(400, "invalidRequest", why)
    behavior = body.get("@microsoft.graph.conflictBehavior", "fail")
    taken = next((c for c in drive.children(parent.id) if c.name.lower() == name.lower()), None)
    if taken is not None and behavior == "rename":
        name = _free_name(drive, parent, name)
    elif taken is not None and behavior == "replace":
        t.delete(drive, t.path_of(drive, taken))
    elif taken is not None:
        return gerr(409, "nameAlreadyExists", "The specified item name already exists.")
    folder = t.ensure_folder(drive, name, parent_id=parent.id)
    return JSONResponse(emu.item_json(drive, folder), 201)


def _free_name(drive: Drive, parent, name: str) -> str:
    names = {c.name.lower() for c in drive.children(parent.id)}
    n = 1
    while f"{name} {n}".lower() in names:
        n += 1
    return f"{name} {n}"


def _json(raw: bytes) -> dict | None:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
