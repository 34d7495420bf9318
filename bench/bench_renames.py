"""A renamed folder re-uploads nothing (issue 9, target 4).

    python bench/bench_renames.py [--files 1000] [--kib-each 64]

Syncs a folder of files, renames the folder on the share (same SMB file ids), and re-syncs.
Both the Samba source and the S3 sink sit behind counting TCP proxies, so the bytes on the wire
are measured, not inferred: bytes read from SMB and sent to S3 during the initial sync and
during the re-sync after the rename, beside the run's own counters (files moved/transferred,
bytes transferred) and the requests moto logged (a server-side copy is a PUT with no body).
Goal: the re-sync transfers 0 bytes of content: every file is moved by a copy in the bucket.
"""
from __future__ import annotations

import argparse
import os
from types import SimpleNamespace

from common import Endpoint, Servers, connector, counting_proxy, make_files, resync, table

KIB = 1024


def moto_requests(srv: Servers, offset: int) -> tuple[dict[str, int], int]:
    """Requests moto logged since `offset` (by method), and the new offset."""
    text = (srv.work / "s3.log").read_text(errors="replace")
    counts: dict[str, int] = {}
    for line in text[offset:].splitlines():
        for method in ("PUT", "GET", "HEAD", "POST", "DELETE"):
            if f'"{method} /' in line:
                counts[method] = counts.get(method, 0) + 1
    return counts, len(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--kib-each", type=int, default=64)
    args = ap.parse_args()
    srv = Servers("bench-renames-")
    s3p, smbp = counting_proxy(srv.s3.port), counting_proxy(srv.samba.port)
    stack = srv.stack(2, s3=Endpoint(f"http://127.0.0.1:{s3p.port}", srv.s3.access_key,
                                     srv.s3.secret_key))
    samba = SimpleNamespace(port=smbp.port, share=srv.samba.share,
                            username=srv.samba.username, password=srv.samba.password)
    try:
        make_files(srv.share, "root/before", args.files, args.kib_each * KIB, per_dir=0)
        api = stack.api()
        from tests.fixtures.stack import wait_run
        proxied = SimpleNamespace(samba=samba)
        cid = connector(api, proxied, "renames", "root")
        view = wait_run(api, cid, timeout=3600)
        _, offset = moto_requests(srv, 0)
        rows = [_row("initial sync", view, smbp, s3p, {})]
        smbp.reset()
        s3p.reset()
        os.rename(srv.share / "root/before", srv.share / "root/after")  # same inodes: same ids
        took, view = resync(api, cid)
        requests, _ = moto_requests(srv, offset)
        rows.append(_row("after renaming the folder", view, smbp, s3p, requests))
        content = args.files * args.kib_each * KIB
        print(f"\n{args.files:,} files of {args.kib_each} KiB ({content / 2**20:.1f} MiB) in one "
              f"folder, renamed; re-sync took {took:.2f} s")
        print(table(["run", "files moved", "files transferred", "bytes transferred",
                     "SMB bytes read (wire)", "S3 bytes sent (wire)", "moto requests"], rows))
    finally:
        stack.stop()
        s3p.close()
        smbp.close()
        srv.stop()


def _row(label: str, view: dict, smbp, s3p, requests: dict) -> list:
    p = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "success", view["status"]
    seen = ", ".join(f"{k} {v}" for k, v in sorted(requests.items())) or "-"
    return [label, p["files_moved"], p["files_transferred"], p["bytes_transferred"],
            smbp.bytes_down, s3p.bytes_up, seen]


if __name__ == "__main__":
    main()
