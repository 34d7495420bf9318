"""The command line: every command and option with its help (`--help` at any level)."""
from __future__ import annotations

import argparse
import os

STATES = ("idle", "running", "paused", "auth_failed", "error")
POLICIES = ("manual", "newer", "source_wins", "scaidrive_wins")
OUTPUT_HELP = ("table (default): for reading; json: the API's answer as JSON, unchanged, "
               "for scripts")


def _output(p: argparse.ArgumentParser, top: bool = False) -> None:
    """`-o table|json`, before or after the command (`-o json connectors list` or
    `connectors list -o json`); SUPPRESS keeps a subcommand from resetting the global one."""
    p.add_argument("-o", "--output", choices=("table", "json"),
                   default="table" if top else argparse.SUPPRESS, help=OUTPUT_HELP)


def _sub(parent, name: str, help: str, **kw) -> argparse.ArgumentParser:
    return parent.add_parser(name, help=help, description=help, **kw)


def build() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scaidrive-connectors",
        description="Run the ScaiDrive connector services, and administer connectors, shares "
                    "and conflicts through the admin API (SCAIDRIVE_API_URL or "
                    "SCAIDRIVE_API_PORT, token in SCAIDRIVE_API_TOKEN).")
    _output(p, top=True)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    u = _sub(sub, "up", "start every service as its own process (restarted if it dies)")
    u.add_argument("--transfer-workers", type=int, default=2,
                   help="how many transfer workers to run (default 2)")
    u.add_argument("--no-api", action="store_true", help="do not start the admin API")
    _sub(sub, "gen-key", "print a new SCAIDRIVE_SECRET_KEY")
    _sub(sub, "rotate-key", "re-encrypt every stored secret with the first key of "
                            "SCAIDRIVE_SECRET_KEY (talks to Redis directly)")
    _shares(sub)
    au = _sub(sub, "audit", "the audit log, newest first: who changed what, and what the system "
                            "did on its own")
    au.add_argument("--connector", metavar="ID", help="only this connector's entries")
    au.add_argument("--event", help="only this event, e.g. connector.auth_failed")
    _output(au)
    _connectors(sub)
    _conflicts(sub)
    return p


def _shares(sub) -> None:
    shares = _sub(sub, "shares", "ScaiDrive shares (one bucket each) that connectors fill")
    actions = shares.add_subparsers(dest="action", required=True, metavar="ACTION")
    sc = _sub(actions, "create", "create a share")
    sc.add_argument("name", help="3-63 characters: lowercase letters, digits and '-'")
    sc.add_argument("--quota-bytes", type=int, help="refuse uploads beyond this many bytes")
    _output(_sub(actions, "list", "every share with its usage and quota"))
    sh = _sub(actions, "show", "one share with its usage and quota")
    sh.add_argument("name", help="the share's name")
    _output(sh)
    _sub(actions, "delete", "delete a share no connector targets").add_argument(
        "name", help="the share's name")


def _connectors(sub) -> None:
    conns = _sub(sub, "connectors", "SMB and SharePoint connectors: list, inspect, create, "
                                    "edit, run, pause")
    actions = conns.add_subparsers(dest="action", required=True, metavar="ACTION")
    _create(actions)
    _edit(actions)
    cls = _sub(actions, "list", "every connector (read a page at a time), filtered")
    cls.add_argument("--state", choices=STATES, help="only connectors in this state")
    cls.add_argument("--kind", choices=("smb", "sharepoint"), help="only this kind")
    cls.add_argument("--flag", choices=("stale", "suspicious_empty"),
                     help="only connectors with this warning")
    _output(cls)
    for action, text in (
            ("show", "one connector: its settings, state and last run"),
            ("failures", "the files that failed to sync, with the cause in plain words"),
            ("held-deletes", "the deletions a run held back (too many at once) for an admin")):
        a = _sub(actions, action, text)
        a.add_argument("id", help="the connector's id")
        _output(a)
    for action, text in (
            ("pause", "stop running the connector (a run in progress stops where it is)"),
            ("resume", "run the connector again on its schedule"),
            ("delete", "delete the connector (its share and files are kept)"),
            ("approve-deletes", "let the next run make the deletions that were held"),
            ("reject-deletes", "keep the files whose deletion was held")):
        _sub(actions, action, text).add_argument("id", help="the connector's id")
    s = _sub(actions, "sync", "run the connector now")
    s.add_argument("id", help="the connector's id")
    s.add_argument("--wait", action="store_true",
                   help="wait until the run finishes (a progress bar on a terminal; the "
                        "connector's status as JSON otherwise); exit 1 if it failed")
    s.add_argument("--timeout", type=float, default=3600,
                   help="give up waiting after this many seconds (default 3600)")
    _output(s)
    w = _sub(actions, "wait", "wait for the running (or first) sync to finish; exit 1 if it "
                              "failed")
    w.add_argument("id", help="the connector's id")
    w.add_argument("--timeout", type=float, default=3600,
                   help="give up after this many seconds (default 3600)")
    _output(w)


def _count_or_off(value: str) -> int | None:
    """N files, or off (no limit)."""
    if value.strip().lower() == "off":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: a number of files, or off") from None


def _throttles(p: argparse.ArgumentParser, editing: bool) -> None:
    """The throttles' options (create and edit); the API checks the values."""
    p.add_argument("--bandwidth-limit", metavar="RATE",
                   help="bytes per second for this connector across all workers: 20M, 512k, "
                        "1.5G, off, or a timetable like '08:00,2M 18:00,off' (in the "
                        "connector's time zone)")
    p.add_argument("--max-parallel-transfers", type=_count_or_off, metavar="N",
                   default=argparse.SUPPRESS,  # absent unless given (off: None)
                   help="at most N files of this connector in flight across all workers "
                        "(off: no limit)")
    p.add_argument("--sync-window", action="append", metavar="'DAYS HH:MM-HH:MM'",
                   help="when runs may start and transfers run, e.g. 'mon-fri 19:00-07:00' "
                        "(crossing midnight), 'weekend 00:00-24:00'; repeat for several"
                        + ("; replaces the connector's windows" if editing else ""))
    p.add_argument("--timezone", metavar="ZONE",
                   help="the time zone of --sync-window, e.g. Europe/Berlin (default UTC)")
    if editing:
        p.add_argument("--no-sync-windows", action="store_true",
                       help="lift the sync windows: run at any time")


def _create(actions) -> None:
    cc = _sub(actions, "create", "create a connector from flags or from --file connector.json")
    cc.add_argument("--file", help="the whole connector as JSON (the API's POST body)")
    cc.add_argument("--kind", choices=("smb", "sharepoint"), default="smb",
                    help="the source (default smb)")
    for flag, text in (
            ("name", "a name for people"),
            ("server", "SMB: smb://host[:port]/share[/folder]"),
            ("username", "SMB: the account to read (and write) the share with"),
            ("domain", "SMB: the account's domain"),
            ("target-share", "the ScaiDrive share to fill"),
            ("target-prefix", "a folder in the target share (default: its root)"),
            ("schedule", "how often to run: 15m, 1h, 24h or a cron expression"),
            ("sync-mode", "one_way (default) or two_way"),
            ("tenant-id", "SharePoint: the Entra tenant's GUID"),
            ("client-id", "SharePoint: the app registration's GUID"),
            ("site-url", "SharePoint: https://TENANT.sharepoint.com/sites/SITE"),
            ("library", "SharePoint: the document library's name"),
            ("certificate-file", "SharePoint: a PEM certificate with its key, instead of a "
                                 "client secret"),
            ("conflict-policy", "two-way: when both sides changed a file: manual "
                                "(default), newer, source_wins or scaidrive_wins")):
        cc.add_argument(f"--{flag}", help=text)
    cc.add_argument("--smb-auth", choices=("ntlm", "kerberos"),
                    help="SMB: how the account logs on (default ntlm; kerberos where the "
                         "domain restricts NTLM: give --domain as its DNS name)")
    cc.add_argument("--admin-email", action="append",
                    help="who is emailed about conflicts (repeat for several)")
    cc.add_argument("--max-delete-percent", type=int,
                    help="hold a run's deletions for an admin above this share of the files")
    _throttles(cc, editing=False)
    cc.add_argument("--password-env", default="SMB_PASSWORD",
                    help="environment variable holding the password (kept off the command line)")
    cc.add_argument("--client-secret-env", default="SP_CLIENT_SECRET",
                    help="environment variable holding the SharePoint app's client secret")
    cc.add_argument("--certificate-password-env", default="SP_CERTIFICATE_PASSWORD",
                    help="environment variable holding the certificate's password")


def _edit(actions) -> None:
    e = _sub(actions, "edit", "change a connector's settings (only the options given); the "
                              "API refuses a wrong value naming the field")
    e.add_argument("id", help="the connector's id")
    e.add_argument("--name", help="a new name")
    e.add_argument("--schedule", help="how often to run: 15m, 1h, 24h or a cron expression")
    e.add_argument("--sync-mode", choices=("one_way", "two_way"),
                   help="one_way (source to ScaiDrive) or two_way")
    e.add_argument("--admin-emails", metavar="A,B",
                   help="who is emailed about conflicts, comma-separated (replaces the list; "
                        "'' empties it)")
    e.add_argument("--conflict-policy", choices=POLICIES,
                   help="two-way: when both sides changed a file: " + ", ".join(POLICIES))
    e.add_argument("--max-delete-percent", type=int, metavar="N",
                   help="hold a run's deletions for an admin above N%% of the files (0-100)")
    _throttles(e, editing=True)
    e.add_argument("--password-stdin", action="store_true",
                   help="SMB: read a new password from the first line of stdin (kept off the "
                        "command line); the connector resumes if it was stopped by auth_failed")
    e.add_argument("--file", metavar="PATCH.json",
                   help="fields to change as a JSON object (the API's PATCH body); options "
                        "given as well override it")
    _output(e)


def _conflicts(sub) -> None:
    confl = _sub(sub, "conflicts", "two-way conflicts: files changed on both sides")
    actions = confl.add_subparsers(dest="action", required=True, metavar="ACTION")
    cl = _sub(actions, "list", "conflicts, newest first")
    cl.add_argument("--connector", metavar="ID", help="only this connector's conflicts")
    cl.add_argument("--state", choices=("open", "resolved", "superseded"),
                    help="only conflicts in this state")
    _output(cl)
    cs = _sub(actions, "show", "one conflict: both versions and its decision")
    cs.add_argument("id", help="the conflict's id")
    _output(cs)
    cr = _sub(actions, "resolve", "decide which version wins; the next run applies it")
    cr.add_argument("id", help="the conflict's id")
    cr.add_argument("--winner", required=True, choices=("source", "scaidrive", "keep_both"),
                    help="source, scaidrive, or keep_both (the ScaiDrive version is kept "
                         "under another name)")
    cr.add_argument("--by", default=os.environ.get("USER", "admin"),
                    help="who decided (default: $USER)")
    cn = _sub(actions, "notify", "send a conflict's failed notification again (the event, "
                                 "the admins' e-mail)")
    cn.add_argument("id", help="the conflict's id")
    ca = _sub(actions, "reapply", "apply a resolved conflict's decision again (after it "
                                  "failed: 'apply failed' in conflicts show)")
    ca.add_argument("id", help="the conflict's id")
