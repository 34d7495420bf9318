"""In-memory tenant of the Graph emulator: an app registration, sites, document libraries and their
items, with a change sequence per drive for delta. Thread-safe through one lock (the tests shape it
from their thread while the server thread serves it)."""
import base64
import datetime as dt
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field

import quickxorhash

INVALID_CHARS = set('"*:<>?/\\|')
RESERVED = {".lock", "con", "prn", "aux", "nul", "desktop.ini"} | {f"com{i}" for i in range(10)} \
    | {f"lpt{i}" for i in range(10)}


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def qxh(data: bytes) -> str:
    h = quickxorhash.quickxorhash()
    h.update(data)
    return base64.b64encode(h.digest()).decode()


def check_name(name: str) -> str | None:
    """Why SharePoint refuses the name, or None."""
    if not name or name != name.strip() or INVALID_CHARS & set(name):
        return f"The name '{name}' contains invalid characters or spaces at its ends."
    low = name.lower()
    if low in RESERVED or low.split(".")[0] in RESERVED or low.startswith("~$") or "_vti_" in low:
        return f"The name '{name}' is reserved."
    return None


def user(email: str) -> dict:
    local = email.split("@")[0]
    return {"email": email, "displayName": local.replace(".", " ").title(),
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "mailto:" + email.lower()))}


@dataclass
class Item:
    id: str
    name: str
    parent_id: str | None
    is_folder: bool
    created: float
    created_by: dict
    data: bytes = field(default=b"", repr=False)
    modified: float = 0.0
    modified_by: dict | None = None
    etag_guid: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    version: int = 1  # eTag: any change
    content_version: int = 1  # cTag: content changes only (Graph: not on rename or move)
    seq: int = 0
    deleted: bool = False
    hash: str = ""


@dataclass
class Drive:
    id: str
    name: str
    site: "Site"
    created: float
    items: dict = field(default_factory=dict)
    root_id: str = ""
    seq: int = 0
    epoch: int = 0  # bumped by expire_delta_tokens: older tokens answer 410

    # parent id -> child id -> item, deleted ones too (`add` and `reparent` keep it): a big
    # library's folder is listed without a pass over every item
    kids: dict = field(default_factory=dict)

    def add(self, item: Item) -> None:
        self.items[item.id] = item
        if item.parent_id is not None:
            self.kids.setdefault(item.parent_id, {})[item.id] = item

    def reparent(self, item: Item, parent_id: str) -> None:
        self.kids.get(item.parent_id, {}).pop(item.id, None)
        item.parent_id = parent_id
        self.kids.setdefault(parent_id, {})[item.id] = item

    def children(self, folder_id: str) -> list[Item]:
        return [i for i in self.kids.get(folder_id, {}).values() if not i.deleted]

    def children_map(self) -> dict[str, list[Item]]:
        """Every folder's children at once (a delta page of a big library answers each
        folder's child count and size from it)."""
        return {k: [i for i in v.values() if not i.deleted] for k, v in self.kids.items()}


@dataclass
class Site:
    id: str
    hostname: str
    path: str
    created: float
    drives: list = field(default_factory=list)
    # Sites.Selected without a grant for this site: Graph answers 403 accessDenied to the site
    # and everything under it (its drives, their items), whatever the token.
    denied: bool = False

    @property
    def web_url(self) -> str:
        return f"https://{self.hostname}{self.path}"


def new_item_id() -> str:
    return "01" + base64.b32encode(secrets.token_bytes(20)).decode()[:32]


class Tenant:
    def __init__(self, tenant_id: str, client_id: str, secret: str, app_cert, default_user: str):
        self.lock = threading.RLock()
        self.tenant_id, self.client_id = tenant_id, client_id
        self.secrets: set[str] = {secret}
        self.app_cert = app_cert
        self.default_user = default_user
        self.sites: dict[str, Site] = {}
        self.drives: dict[str, Drive] = {}
        self.tokens: dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self.token_lifetime_s = 3600

    # ----- shaping -----
    def add_site(self, hostname: str, path: str) -> Site:
        with self.lock:
            path = "/" + path.strip("/") if path.strip("/") else "/"
            site = Site(f"{hostname},{uuid.uuid4()},{uuid.uuid4()}", hostname, path, time.time())
            self.sites[site.id] = site
            return site

    def find_site(self, hostname: str, path: str) -> Site | None:
        path = "/" + path.strip("/") if path.strip("/") else "/"
        for s in self.sites.values():
            if s.hostname.lower() == hostname.lower() and s.path.lower() == path.lower():
                return s
        return None

    def add_library(self, site: Site, name: str) -> Drive:
        with self.lock:
            drive_id = "b!" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode()
            drive = Drive(drive_id, name, site, time.time())
            root = Item(new_item_id(), "root", None, True, drive.created, user(self.default_user),
                        modified=drive.created)
            drive.add(root)
            drive.root_id = root.id
            self._touch(drive, root)
            site.drives.append(drive)
            self.drives[drive_id] = drive
            return drive

    def _touch(self, drive: Drive, item: Item) -> None:
        drive.seq += 1
        item.seq = drive.seq

    def _children_changed(self, drive: Drive, folder_id: str | None) -> None:
        """A child was added to, removed from or renamed in the folder: SharePoint gives the
        folder a new eTag (an If-Match on the old one is a 412 from then on)."""
        folder = drive.items.get(folder_id) if folder_id else None
        if folder is not None:
            folder.version += 1

    def resolve(self, drive: Drive, path: str, parent_id: str | None = None) -> Item | None:
        item = drive.items[parent_id or drive.root_id]
        for part in [p for p in path.split("/") if p]:
            item = next((c for c in drive.children(item.id) if c.name.lower() == part.lower()),
                        None)
            if item is None:
                return None
        return item

    def ensure_folder(self, drive: Drive, path: str, email: str | None = None,
                      parent_id: str | None = None) -> Item:
        with self.lock:
            folder = drive.items[parent_id or drive.root_id]
            for part in [p for p in path.split("/") if p]:
                nxt = next((c for c in drive.children(folder.id)
                            if c.name.lower() == part.lower()), None)
                if nxt is None:
                    now = time.time()
                    nxt = Item(new_item_id(), part, folder.id, True, now,
                               user(email or self.default_user), modified=now)
                    drive.add(nxt)
                    self._touch(drive, nxt)
                    self._children_changed(drive, folder.id)
                folder = nxt
            return folder

    def put_file(self, drive: Drive, path: str, data: bytes, created_by_email: str | None = None,
                 modified_by_email: str | None = None,
                 parent_id: str | None = None) -> tuple[Item, bool]:
        """Create or replace a file; returns (item, created)."""
        with self.lock:
            folder_path, _, name = path.strip("/").rpartition("/")
            folder = self.ensure_folder(drive, folder_path, created_by_email, parent_id)
            item = next((c for c in drive.children(folder.id) if c.name.lower() == name.lower()),
                        None)
            now = time.time()
            created = item is None
            if created:
                item = Item(new_item_id(), name, folder.id, False, now,
                            user(created_by_email or self.default_user))
                drive.add(item)
                self._children_changed(drive, folder.id)
            elif item.is_folder:
                raise ValueError(f"{path} is a folder")
            else:
                item.version += 1
                item.content_version += 1
            item.data, item.hash, item.modified = data, qxh(data), now
            item.modified_by = user(modified_by_email or created_by_email or self.default_user)
            self._touch(drive, item)
            return item, created

    def delete(self, drive: Drive, path: str) -> None:
        with self.lock:
            item = self.resolve(drive, path)
            if item is None or item.id == drive.root_id:
                raise KeyError(path)
            for victim in [item, *self.descendants(drive, item)]:
                victim.deleted = True
                self._touch(drive, victim)
            self._children_changed(drive, item.parent_id)

    def remove_library(self, drive: Drive) -> None:
        with self.lock:
            drive.site.drives.remove(drive)
            del self.drives[drive.id]

    def set_modified(self, drive: Drive, path: str, when: float) -> Item:
        """Metadata only (PATCH fileSystemInfo): the eTag changes, the cTag does not."""
        with self.lock:
            item = self.resolve(drive, path)
            if item is None:
                raise KeyError(path)
            item.modified = when
            item.version += 1
            self._touch(drive, item)
            return item

    def descendants(self, drive: Drive, item: Item) -> list[Item]:
        out = []
        for c in drive.children(item.id):
            out += [c, *self.descendants(drive, c)]
        return out

    def move(self, drive: Drive, old: str, new: str) -> Item:
        with self.lock:
            item = self.resolve(drive, old)
            if item is None or item.id == drive.root_id:
                raise KeyError(old)
            folder_path, _, name = new.strip("/").rpartition("/")
            folder = self.ensure_folder(drive, folder_path)
            if self.resolve(drive, name, folder.id) not in (None, item):
                raise FileExistsError(new)
            for parent_id in {item.parent_id, folder.id}:  # the folder left, the one entered
                self._children_changed(drive, parent_id)
            item.name = name
            drive.reparent(item, folder.id)
            item.version += 1
            item.modified = time.time()
            self._touch(drive, item)
            return item

    def path_of(self, drive: Drive, item: Item) -> str:
        parts = []
        while item.parent_id is not None:
            parts.append(item.name)
            item = drive.items[item.parent_id]
        return "/" + "/".join(reversed(parts))

    # ----- auth -----
    def issue_token(self) -> tuple[str, int]:
        with self.lock:
            token = "eyJ0eXAiOiJKV1QiLCJ" + secrets.token_urlsafe(48)
            self.tokens[token] = time.time() + self.token_lifetime_s
            return token, self.token_lifetime_s

    def token_valid(self, token: str) -> bool:
        with self.lock:
            exp = self.tokens.get(token)
            return exp is not None and exp > time.time()
