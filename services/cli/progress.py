"""`connectors sync --wait` and `connectors wait`: poll `GET /connectors/{id}` until the run is
over. On a terminal a live progress bar (files listed while listing, then done/total, percent,
throughput and time left); piped (or `-o json`) the connector's status as JSON at the end, as
always. Exit 0 for a run that succeeded (or partly), 1 for a failed one or a timeout."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn

from services.cli import client
from services.cli.tables import human_bytes

Finished = Callable[[dict], bool]


def live(output: str) -> bool:
    return output != "json" and sys.stdout.isatty()


def sync(cid: str, timeout: float, wait: bool, output: str) -> int:
    before = client.status(cid)
    previous_run = (before.get("run") or {}).get("run_id")
    client.call("POST", f"/connectors/{cid}/sync")
    if not wait:
        return 0

    def finished(status: dict) -> bool:
        run = status.get("run") or {}
        return run.get("phase") == "finished" and (run.get("run_id") != previous_run
                                                   or before["state"] == "running")

    return _follow(cid, timeout, finished, output, f"run did not finish within {timeout}s",
                   first_wait=1)


def wait(cid: str, timeout: float, output: str) -> int:
    """Until the connector has a finished run and none going (e.g. its first sync)."""
    def finished(status: dict) -> bool:
        return ((status.get("run") or {}).get("phase") == "finished"
                and status["state"] != "running")

    return _follow(cid, timeout, finished, output, f"still running after {timeout}s",
                   first_wait=0)


def _outcome(status: dict) -> int:
    return 0 if (status.get("run") or {}).get("outcome") in ("success", "partial") else 1


def _follow(cid: str, timeout: float, finished: Finished, output: str, too_long: str,
            first_wait: float) -> int:
    if live(output):
        return _follow_live(cid, timeout, finished, too_long, first_wait)
    deadline = time.monotonic() + timeout
    time.sleep(first_wait)
    while time.monotonic() < deadline:
        status = client.status(cid)
        if finished(status):
            client.print_json(status)
            return _outcome(status)
        time.sleep(1)
    sys.exit(too_long)


def _follow_live(cid: str, timeout: float, finished: Finished, too_long: str,
                 first_wait: float) -> int:
    console = Console(highlight=False)
    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.fields[detail]}"), console=console, transient=False)
    deadline = time.monotonic() + timeout
    with bar:
        task = bar.add_task("waiting for the run to start", total=None, detail="")
        time.sleep(first_wait)
        while time.monotonic() < deadline:
            status = client.status(cid)
            over = finished(status)
            _draw(bar, task, status, over)
            if over:
                break
            time.sleep(1)
        else:
            status = None
    if status is None:
        sys.exit(too_long)
    console.print(summary(status, cid))
    return _outcome(status)


def _draw(bar: Progress, task: TaskID, status: dict, over: bool) -> None:
    run = status.get("run") or {}
    p = status.get("progress") or {}
    total = p.get("files_total")
    if not run or (run.get("phase") == "finished" and not over):  # the previous run's
        bar.update(task, description="waiting for the run to start", total=None, detail="")
    elif over:
        done = run.get("jobs_done", 0)
        bar.update(task, description="finished", total=max(total or done, 1),
                   completed=max(total or done, 1), detail=f"{p.get('percent') or 100:.1f}%")
    elif total is None:
        bar.update(task, description=f"listing: {p.get('files_listed', 0)} files found",
                   total=None, detail="")
    else:
        done = min(run.get("jobs_done", 0), total)
        bar.update(task, description=f"{done}/{total} files", total=max(total, 1),
                   completed=done if total else 1, detail=detail(p))


def detail(p: dict) -> str:
    """"42.5%  1.2 MB/s  ETA 0:07" as far as it is known."""
    parts = [f"{p['percent']:.1f}%" if p.get("percent") is not None else "…%"]
    if p.get("bytes_per_s"):
        parts.append(f"{human_bytes(p['bytes_per_s'])}/s")
    eta = p.get("eta_s")
    parts.append(f"ETA {_clock(eta)}" if eta is not None else "ETA unknown")
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def summary(status: dict, cid: str) -> str:
    run = status.get("run") or {}
    p = status.get("progress") or {}
    took = ""
    if status.get("last_duration_s") is not None and run.get("outcome") != "failed":
        took = f" in {status['last_duration_s']:.1f} s"
    line = (f"run {run.get('outcome') or 'ended'}{took}: {p.get('files_transferred', 0)} "
            f"file(s) sent ({human_bytes(p.get('bytes_transferred', 0))}), "
            f"{p.get('files_deleted', 0)} deleted, {p.get('files_errored', 0)} failed")
    if run.get("error"):
        line += f"\nerror: {run['error']}"
    if p.get("files_errored"):
        line += f"\nsee: scaidrive-connectors connectors failures {cid}"
    return line
