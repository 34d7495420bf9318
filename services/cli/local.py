"""Commands that run on this machine rather than through the API: `up` (every service as its own
process, supervised) and `rotate-key` (straight to Redis)."""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

SERVICES = ("api", "scheduler", "scanner", "identity", "conflicts")


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
