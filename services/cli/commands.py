"""What each API command does: read or change through the admin API, then show the answer as a
table (default) or as the API's JSON (`-o json`, byte for byte what the CLI always printed)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from services.cli import client, tables
from services.cli.client import print_json


def _show(args: argparse.Namespace, data, table: Callable[..., None]) -> None:
    if getattr(args, "output", "table") == "json":
        print_json(data)
    else:
        table(data)


# --- shares, audit, conflicts ---------------------------------------------------------------

def shares(args: argparse.Namespace) -> None:
    if args.action == "create":
        print_json(client.call("POST", "/shares",
                               json={"name": args.name, "quota_bytes": args.quota_bytes}))
    elif args.action == "list":
        _show(args, client.call("GET", "/shares"), tables.shares)
    elif args.action == "show":
        _show(args, client.call("GET", f"/shares/{args.name}"), tables.share)
    else:
        print_json(client.call("DELETE", f"/shares/{args.name}"))


def audit(args: argparse.Namespace) -> None:
    query = {k: v for k, v in (("connector_id", args.connector), ("event", args.event)) if v}
    _show(args, client.call("GET", "/audit", params=query), tables.audit)


def conflicts(args: argparse.Namespace) -> None:
    if args.action == "list":
        query = {k: v for k, v in (("connector", args.connector), ("state", args.state)) if v}
        _show(args, client.call("GET", "/conflicts", params=query), tables.conflicts)
    elif args.action == "show":
        _show(args, client.call("GET", f"/conflicts/{args.id}"), tables.conflict)
    elif args.action in ("notify", "reapply"):
        print_json(client.call("POST", f"/conflicts/{args.id}/{args.action}"))
    else:
        print_json(client.call("POST", f"/conflicts/{args.id}/resolve",
                               json={"winner": args.winner, "resolved_by": args.by}))


# --- connectors -----------------------------------------------------------------------------

def connectors(args: argparse.Namespace) -> int:
    from services.cli import progress

    action = args.action
    if action == "create":
        print_json(client.call("POST", "/connectors", json=create_body(args)))
    elif action == "edit":
        edited = client.call("PATCH", f"/connectors/{args.id}", json=edit_body(args))
        _show(args, edited, tables.connector)
    elif action == "sync":
        return progress.sync(args.id, args.timeout, args.wait, args.output)
    elif action == "wait":
        return progress.wait(args.id, args.timeout, args.output)
    elif action == "list":
        _show(args, client.all_pages("/connectors", {"state": args.state, "kind": args.kind,
                                                     "flag": args.flag}), tables.connectors)
    elif action == "show":
        _show(args, client.call("GET", f"/connectors/{args.id}"), tables.connector)
    elif action == "failures":
        if args.output == "json":
            print_json(client.call("GET", f"/connectors/{args.id}/failures"))
        else:  # the table: one row per path, how often and when last
            tables.failures(client.call("GET", f"/connectors/{args.id}/failures",
                                        params={"group": "path"}))
    elif action == "held-deletes":
        _show(args, client.call("GET", f"/connectors/{args.id}/held-deletes"),
              tables.held_deletes)
    elif action in ("approve-deletes", "reject-deletes"):
        decision = action.split("-")[0]
        print_json(client.call("POST", f"/connectors/{args.id}/held-deletes/{decision}"))
    else:  # pause, resume, delete
        method = "DELETE" if action == "delete" else "POST"
        suffix = "" if action == "delete" else f"/{action}"
        print_json(client.call(method, f"/connectors/{args.id}{suffix}"))
    return 0


def create_body(args: argparse.Namespace) -> dict:
    if args.file:
        return _read_json(args.file)
    body = {"kind": args.kind, "name": args.name, "target_share": args.target_share,
            "target_prefix": args.target_prefix, "sync_mode": args.sync_mode,
            "schedule": args.schedule, "admin_emails": args.admin_email,
            "conflict_policy": args.conflict_policy,
            "max_delete_percent": args.max_delete_percent} | throttles(args)
    body |= _sharepoint_fields(args) if args.kind == "sharepoint" else {
        "server": args.server, "username": args.username, "domain": args.domain,
        "smb_auth": args.smb_auth,
        "password": os.environ.get(args.password_env) if args.password_env else None}
    return {k: v for k, v in body.items() if v is not None}


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


EDIT_FLAGS = ("name", "schedule", "sync_mode", "conflict_policy", "max_delete_percent")


def edit_body(args: argparse.Namespace) -> dict:
    """Only what was given: `--file` first, the flags over it; the password from stdin."""
    body = _read_json(args.file) if args.file else {}
    body |= {f: getattr(args, f) for f in EDIT_FLAGS if getattr(args, f) is not None}
    if args.admin_emails is not None:
        body["admin_emails"] = [e.strip() for e in args.admin_emails.split(",") if e.strip()]
    body |= throttles(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            sys.exit("--password-stdin: nothing was read from stdin")
        body["password"] = password
    if not body:
        sys.exit("nothing to change: give at least one option (see --help)")
    return body


def throttles(args: argparse.Namespace) -> dict:
    """The throttle options given: `off` (bandwidth, parallel transfers) and --no-sync-windows
    lift one (null in the body)."""
    out: dict = {}
    if args.bandwidth_limit is not None:
        out["bandwidth_limit"] = args.bandwidth_limit
    if "max_parallel_transfers" in vars(args):  # given (None: off)
        out["max_parallel_transfers"] = args.max_parallel_transfers
    if args.sync_window:
        out["sync_windows"] = {"timezone": args.timezone or "UTC", "windows": args.sync_window}
    elif getattr(args, "no_sync_windows", False):
        out["sync_windows"] = None
    elif args.timezone:
        sys.exit("--timezone goes with --sync-window (the windows it is the time zone of)")
    return out


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        sys.exit(f"cannot read {path}: {exc}")
    if not isinstance(data, dict):
        sys.exit(f"{path}: expected a JSON object")
    return data
