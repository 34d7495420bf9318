"""SharePoint's traffic as Microsoft asks applications to send it: every request the source
makes to Graph, to a download URL and to an upload session is decorated with
"ISV|CompanyName|AppName/Version" (SharePoint Online throttles undecorated traffic first)."""
from __future__ import annotations

import io
import os

from shared.sources.sharepoint.graph import USER_AGENT
from tests.conformance.remotes import MiB, read_all


def test_every_request_to_sharepoint_is_decorated(graph, sp):
    assert USER_AGENT.startswith("ISV|ScaiDrive|ScaiDrive Connectors/")
    sp.put("d/a.txt", b"a")
    source = sp.make_source()
    graph.emu.user_agents.clear()

    assert set(source.list().entries) == {"d/a.txt"}
    assert read_all(source, "d/a.txt") == b"a"
    data = os.urandom(MiB)
    assert source.write("d/b.bin", io.BytesIO(data), len(data)).size == MiB

    seen = graph.user_agents()
    assert {"graph", "download", "upload"} <= set(seen), seen
    for kind in ("graph", "download", "upload"):
        assert seen[kind] and all(ua.startswith(USER_AGENT) for ua in seen[kind]), (kind, seen)
