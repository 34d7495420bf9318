"""`scaidrive-connectors`: start the stack, and a client of the admin API for operators.

Listings and single records are tables by default; `-o json` prints the API's JSON exactly as
the CLI always did (scripts parse it). `connectors sync --wait` shows a live progress bar on a
terminal. Modules: parser (the command line), commands (API calls), tables (what is shown),
progress (waiting for a run), client (HTTP), local (`up`, `rotate-key`)."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from services.cli import commands, local, parser

    args = parser.build().parse_args(argv)
    if args.cmd == "up":
        sys.exit(local.up(args))
    if args.cmd == "gen-key":
        from shared.config.secrets import generate_key
        print(generate_key())
        return
    if args.cmd == "rotate-key":
        sys.exit(local.rotate_key())
    if args.cmd == "audit":
        commands.audit(args)
    elif args.cmd == "shares":
        commands.shares(args)
    elif args.cmd == "conflicts":
        commands.conflicts(args)
    else:
        code = commands.connectors(args)
        if args.action in ("sync", "wait"):
            sys.exit(code)
