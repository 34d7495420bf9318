"""Client-side helpers the emulator tests share: a fresh library, delta followed to its end,
paths rebuilt from parent ids."""
import uuid

SCOPE = "https://graph.microsoft.com/.default"
CHUNK = 327_680


def new_library(graph, name="Documents"):
    site = graph.add_site("contoso.sharepoint.com", f"/sites/t-{uuid.uuid4().hex[:8]}")
    return site, graph.add_library(site, name)


async def delta_all(client, drive_id, link=None):
    """Follow nextLinks to the deltaLink; returns (items in order, pages, deltaLink)."""
    builder = client.drives.by_drive_id(drive_id).items.by_drive_item_id("root").delta
    resp = await (builder.with_url(link).get() if link else builder.get())
    items, pages = list(resp.value), 1
    while resp.odata_next_link:
        assert resp.odata_next_link.startswith("https://127.0.0.1:")
        resp = await builder.with_url(resp.odata_next_link).get()
        items += resp.value
        pages += 1
    assert resp.odata_delta_link
    return items, pages, resp.odata_delta_link


def paths_from_delta(items):
    """Rebuild {path: item} from parent ids only (delta has no parentReference.path)."""
    by_id = {}
    for it in items:
        if it.deleted is not None:
            by_id.pop(it.id, None)
        else:
            by_id[it.id] = it
    root = next(i for i in by_id.values() if i.root is not None)

    def path(it):
        parts = []
        while it.id != root.id:
            assert it.parent_reference.path is None
            parts.append(it.name)
            it = by_id[it.parent_reference.id]
        return "/".join(reversed(parts))
    return {path(i): i for i in by_id.values() if i.id != root.id}
