"""`scaidrive-connectors`: start the stack, and a thin client of the admin API for operators."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import httpx

SERVICES = ("api", "scheduler", "scanner", "identity", "conflicts")


def _api() -> httpx.Client:
    port = os.environ.get("SCAIDRIVE_API_PORT", "8080")
    base = os.environ.get("SCAIDRIVE_API_URL", f"http://127.0.0.1:{port}")
    token = os.environ.get("SCAIDRIVE_API_TOKEN")
    if not token:
        sys.exit("SCAIDRIVE_API_TOKEN is not set")
    return httpx.Client(base_url=base + "/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def _call(method: str, path: str, **kwargs) -> dict | list | None:
    with _api() as client:
        resp = client.request(method, path, **kwargs)
    if resp.status_code >= 400:
        sys.exit(f"error {resp.status_code}: {resp.text}")
    return resp.json() if resp.content else None


def _all_pages(path: str, params: dict, page: int = 200) -> list:
    """Every item of a paged listing, following X-Next-Cursor page by page."""
    items: list = []
    cursor = None
    with _api() as client:
        while True:
            query = {k: v for k, v in params.items() if v} | {"limit": page}
            resp = client.get(path, params=query | ({"cursor": cursor} if cursor else {}))
            if resp.status_code >= 400:
                sys.exit(f"error {resp.status_code}: {resp.text}")
            items += resp.json()
            cursor = resp.headers.get("x-next-cursor")
            if not cursor:
                return items


def _status(cid: str) -> dict:
    """The connector's `status`, as `GET /connectors/{id}` shows it."""
    connector = _call("GET", f"/connectors/{cid}")
    if not isinstance(connector, dict):
        sys.exit(f"unexpected answer for connector {cid}: {connector!r}")
    return connector["status"]


def _print(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# --- up: every service as its own process ----------------------------------------------------

def up(args: argparse.Namespace) -> int:
    """Start each service as a child process; restart one that dies; stop all on Ctrl-C/TERM."""
    names = [s for s in SERVICES if not (s == "api" and args.no_api)]
    names += ["transfer"] * args.transfer_workers
    procs: list[tuple[str, subprocess.Popen]] = [(n, _spawn(n)) for n in names]
    stopping = False
    exit_code = 0

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        time.sleep(0.5)
        for i, (name, proc) in enumerate(procs):
            if proc.poll() is not None and not stopping:
                if proc.returncode == 2:  # configuration error: restarting will not help
                    stopping, exit_code = True, 2
                    break
                print(f"{name} exited with {proc.returncode}; restarting", file=sys.stderr)
                time.sleep(1)
                procs[i] = (name, _spawn(name))
    for _, proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for _, proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return exit_code


def _spawn(name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", f"services.{name}"])


# --- rotate-key: re-encrypt stored secrets with the first key --------------------------------

def rotate_key() -> int:
    """Straight to Redis with the services' settings (not through the API: the API could be
    down, and it should never hand out secrets, even encrypted ones)."""
    import asyncio

    from shared.config import settings as settings_mod
    from shared.config.settings import Settings

    settings = settings_mod.load(Settings)  # a bad setting: exit 2, naming it
    return asyncio.run(_rotate(settings))


async def _rotate(settings) -> int:
    from shared.config.secrets import SecretBox
    from shared.store.key_rotation import Undecryptable, rotate_secrets
    from shared.store.state import State, StoreError

    state = State.connect(settings.redis_url.get_secret_value(), settings.namespace)
    try:
        report = await rotate_secrets(state, SecretBox(settings.secret_key))
    except Undecryptable as exc:
        done = "Others were rotated already." if exc.changed else "Nothing was changed."
        print("refused: no key of SCAIDRIVE_SECRET_KEY decrypts " + "; ".join(exc.where)
              + f". {done} Add the key they were sealed with (after the first) and run it "
              "again.", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"cannot rotate: Redis: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await state.close()
    print(f"rotated {report.rotated} secret(s) of {report.connectors} connector(s) to the first "
          f"key; {report.current} already used it")
    return 0


# --- API client commands ---------------------------------------------------------------------

def create_connector(args: argparse.Namespace) -> None:
    if args.file:
        with open(args.file, encoding="utf-8") as f:
            body = json.load(f)
    else:
        body = {"kind": args.kind, "name": args.name, "target_share": args.target_share,
                "target_prefix": args.target_prefix, "sync_mode": args.sync_mode,
                "schedule": args.schedule, "admin_emails": args.admin_email,
                "conflict_policy": args.conflict_policy,
                "max_delete_percent": args.max_delete_percent}
        body |= _sharepoint_fields(args) if args.kind == "sharepoint" else {
            "server": args.server, "username": args.username, "domain": args.domain,
            "password": os.environ.get(args.password_env) if args.password_env else None}
        body = {k: v for k, v in body.items() if v is not None}
    _print(_call("POST", "/connectors", json=body))


def _sharepoint_fields(args: argparse.Namespace) -> dict:
    """Secrets come from the environment or a file, never from the command line."""
    certificate = None
    if args.certificate_file:
        with open(args.certificate_file, encoding="ascii") as f:
            certificate = f.read()
    return {"tenant_id": args.tenant_id, "client_id": args.client_id, "site_url": args.site_url,
            "library": args.library, "certificate": certificate,
            "client_secret": None if certificate else os.environ.get(args.client_secret_env),
            "certificate_password": os.environ.get(args.certificate_password_env)
            if certificate else None}


def sync(args: argparse.Namespace) -> int:
    before = _status(args.id)
    previous_run = (before.get("run") or {}).get("run_id")
    _call("POST", f"/connectors/{args.id}/sync")
    if not args.wait:
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        time.sleep(1)
        status = _status(args.id)
        run = status.get("run") or {}
        if run.get("phase") == "finished" and (run.get("run_id") != previous_run
                                               or before["state"] == "running"):
            _print(status)
            return 0 if run.get("outcome") in ("success", "partial") else 1
    sys.exit(f"run did not finish within {args.timeout}s")


def wait(args: argparse.Namespace) -> int:
    """Wait until the connector has a finished run and none going (e.g. its first sync)."""
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        status = _status(args.id)
        if (status.get("run") or {}).get("phase") == "finished" and status["state"] != "running":
            _print(status)
            return 0 if status["run"]["outcome"] in ("success", "partial") else 1
        time.sleep(1)
    sys.exit(f"still running after {args.timeout}s")


def conflicts(args: argparse.Namespace) -> None:
    if args.action == "list":
        query = {k: v for k, v in (("connector", args.connector), ("state", args.state)) if v}
        _print(_call("GET", "/conflicts", params=query))
    elif args.action == "show":
        _print(_call("GET", f"/conflicts/{args.id}"))
    else:
        _print(_call("POST", f"/conflicts/{args.id}/resolve",
                     json={"winner": args.winner, "resolved_by": args.by}))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scaidrive-connectors")
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start every service as its own process")
    u.add_argument("--transfer-workers", type=int, default=2)
    u.add_argument("--no-api", action="store_true")
    sub.add_parser("gen-key", help="print a new SCAIDRIVE_SECRET_KEY")
    sub.add_parser("rotate-key", help="re-encrypt every stored secret with the first key of "
                                      "SCAIDRIVE_SECRET_KEY (talks to Redis directly)")

    shares = sub.add_parser("shares").add_subparsers(dest="action", required=True)
    sc = shares.add_parser("create")
    sc.add_argument("name")
    sc.add_argument("--quota-bytes", type=int)
    shares.add_parser("list")
    for action in ("show", "delete"):
        shares.add_parser(action).add_argument("name")

    au = sub.add_parser("audit", help="the audit log, newest first")
    au.add_argument("--connector")
    au.add_argument("--event", help="e.g. connector.auth_failed")
    conns = sub.add_parser("connectors").add_subparsers(dest="action", required=True)
    cc = conns.add_parser("create", help="from flags or --file connector.json")
    cc.add_argument("--file")
    cc.add_argument("--kind", choices=("smb", "sharepoint"), default="smb")
    for flag in ("name", "server", "username", "domain", "target-share", "target-prefix",
                 "schedule", "sync-mode", "tenant-id", "client-id", "site-url", "library",
                 "certificate-file", "conflict-policy"):
        cc.add_argument(f"--{flag}")
    cc.add_argument("--admin-email", action="append", help="who is emailed about conflicts")
    cc.add_argument("--max-delete-percent", type=int)
    cc.add_argument("--password-env", default="SMB_PASSWORD",
                    help="environment variable holding the password (kept off the command line)")
    cc.add_argument("--client-secret-env", default="SP_CLIENT_SECRET",
                    help="environment variable holding the SharePoint app's client secret")
    cc.add_argument("--certificate-password-env", default="SP_CERTIFICATE_PASSWORD")
    cls = conns.add_parser("list", help="every connector (read a page at a time), filtered")
    cls.add_argument("--state", choices=("idle", "running", "paused", "auth_failed", "error"))
    cls.add_argument("--kind", choices=("smb", "sharepoint"))
    cls.add_argument("--flag", choices=("stale", "suspicious_empty"))
    for action in ("show", "pause", "resume", "delete", "failures", "held-deletes"):
        conns.add_parser(action).add_argument("id")
    for action in ("approve-deletes", "reject-deletes"):
        conns.add_parser(action, help="settle the deletions a two-way run held").add_argument("id")
    confl = sub.add_parser("conflicts").add_subparsers(dest="action", required=True)
    cl = confl.add_parser("list")
    cl.add_argument("--connector")
    cl.add_argument("--state", choices=("open", "resolved", "superseded"))
    confl.add_parser("show").add_argument("id")
    cr = confl.add_parser("resolve")
    cr.add_argument("id")
    cr.add_argument("--winner", required=True, choices=("source", "scaidrive", "keep_both"))
    cr.add_argument("--by", default=os.environ.get("USER", "admin"), help="who decided")
    s = conns.add_parser("sync", help="run now")
    s.add_argument("id")
    s.add_argument("--wait", action="store_true", help="wait until the run finishes")
    s.add_argument("--timeout", type=float, default=3600)
    w = conns.add_parser("wait", help="wait for the running (or first) sync to finish")
    w.add_argument("id")
    w.add_argument("--timeout", type=float, default=3600)
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.cmd == "up":
        sys.exit(up(args))
    if args.cmd == "gen-key":
        from shared.config.secrets import generate_key
        print(generate_key())
        return
    if args.cmd == "rotate-key":
        sys.exit(rotate_key())
    if args.cmd == "audit":
        query = {k: v for k, v in (("connector_id", args.connector), ("event", args.event)) if v}
        _print(_call("GET", "/audit", params=query))
        return
    if args.cmd == "shares":
        share = {"name": getattr(args, "name", None),
                 "quota_bytes": getattr(args, "quota_bytes", None)}
        routes = {"create": ("POST", "/shares", {"json": share}),
                  "list": ("GET", "/shares", {}),
                  "show": ("GET", f"/shares/{getattr(args, 'name', '')}", {}),
                  "delete": ("DELETE", f"/shares/{getattr(args, 'name', '')}", {})}
        method, path, kw = routes[args.action]
        _print(_call(method, path, **kw))
        return
    if args.cmd == "conflicts":
        conflicts(args)
        return
    if args.action == "create":
        create_connector(args)
    elif args.action == "sync":
        sys.exit(sync(args))
    elif args.action == "wait":
        sys.exit(wait(args))
    elif args.action == "list":
        _print(_all_pages("/connectors", {"state": args.state, "kind": args.kind,
                                          "flag": args.flag}))
    elif args.action in ("show", "failures", "held-deletes"):
        suffix = "" if args.action == "show" else f"/{args.action}"
        _print(_call("GET", f"/connectors/{args.id}{suffix}"))
    elif args.action in ("approve-deletes", "reject-deletes"):
        decision = args.action.split("-")[0]
        _print(_call("POST", f"/connectors/{args.id}/held-deletes/{decision}"))
    else:
        method = "DELETE" if args.action == "delete" else "POST"
        suffix = "" if args.action == "delete" else f"/{args.action}"
        _print(_call(method, f"/connectors/{args.id}{suffix}"))


if __name__ == "__main__":
    main()
