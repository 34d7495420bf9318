"""The chaos run's admin: asks for runs and waits for them through the API, resolves open
conflicts with random winners (recording in the ledger what each side held when the decision
was sent), approves or rejects held deletions at random, sends dead-lettered decisions again,
and quiesces the connector at the end. Every call tolerates the broker being down for a while
(the API answers 5xx or slowly then) and retries."""
from __future__ import annotations

import hashlib
import random
import time
from collections import Counter

import httpx
import redis

from tests.chaos.ledger import Decision, Ledger, digest
from tests.chaos.sides import S3Side, SmbSide

WINNERS = ("source", "scaidrive", "keep_both")
BUSY = ("files_transferred", "files_moved", "files_deleted", "files_errored", "files_conflicted")


class NotQuiet(AssertionError):
    """The connector did not reach a run with nothing to do (a run that never ends, a conflict
    that keeps coming back, a decision never applied)."""


class Admin:
    def __init__(self, stack, cid: str, smb: SmbSide, s3: S3Side, ledger: Ledger,
                 rng: random.Random, log=print):
        self.api, self.cid, self.smb, self.s3 = stack.api(), cid, smb, s3
        self.ns, self.redis_url = stack.ns, stack.env["SCAIDRIVE_REDIS_URL"]
        self.findings: list[str] = []
        self.ledger, self.rng, self.log = ledger, rng, log
        self.winners: Counter[str] = Counter()
        self.held: Counter[str] = Counter()  # approve / reject -> times
        self.reapplied = 0

    # --- calls ---------------------------------------------------------------------------

    def call(self, method: str, url: str, tries: int = 40, **kw) -> httpx.Response:
        """A request, tried again while the API cannot answer (5xx, timeouts)."""
        last: object = None
        for _ in range(tries):
            try:
                resp = self.api.request(method, url, **kw)
            except httpx.HTTPError as exc:
                last = exc
            else:
                if resp.status_code < 500:
                    return resp
                last = resp.text
            time.sleep(1)
        raise AssertionError(f"{method} {url}: no answer after {tries} tries: {last}")

    def view(self) -> dict:
        return self.call("GET", f"/connectors/{self.cid}").json()

    def run(self) -> dict:
        return self.view()["status"]["run"] or {}

    def sync(self) -> None:
        resp = self.call("POST", f"/connectors/{self.cid}/sync")
        assert resp.status_code == 202, resp.text

    def wait_idle(self, timeout: float = 240) -> dict:
        """Until the run going now (if any) has finished; the connector's view."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.view()
            if (view["status"]["run"] or {}).get("phase") == "finished":
                return view
            time.sleep(0.3)
        raise NotQuiet(f"a run that never ends (over {timeout} s): {self.view()['status']}")

    def sync_and_wait(self, timeout: float = 240) -> dict:
        """Ask for a run once none is going and wait for it to finish. A request that starts
        nothing for 45 s while the lease is held (no run going) is a finding: it was dropped."""
        before = self.wait_idle(timeout)["status"]["run"].get("run_id")
        self.sync()
        asked = time.monotonic()
        deadline = asked + timeout
        while time.monotonic() < deadline:
            view = self.view()
            run = view["status"]["run"] or {}
            if run.get("phase") == "finished" and run.get("run_id") != before:
                return view
            if run.get("run_id") == before and time.monotonic() - asked > 45 and \
                    (lease := self.lease())[0] is not None:
                self._dropped_request(run, *lease)
                asked = time.monotonic()
            time.sleep(0.3)
        raise NotQuiet(f"a run that never ends (over {timeout} s): {self.view()['status']}")

    def lease(self) -> tuple[str | None, int]:
        """The connector's run lease in Redis: (holder run id, ms left)."""
        r = redis.Redis.from_url(self.redis_url, decode_responses=True)
        try:
            key = f"{self.ns}:lease:{self.cid}"
            holder = r.get(key)
            return (None if holder is None else str(holder)), int(r.pttl(key))
        finally:
            r.close()

    def _dropped_request(self, run: dict, holder: str | None, left: int) -> None:
        """Record why no run started, wait for the lease to go, and ask again (so the chaos
        run goes on testing the data; the finding fails it anyway)."""
        self.findings.append(
            f"round {self.ledger.round}: a run requested (202) did not start in 45 s: the last "
            f"run {run.get('run_id')} reads {run.get('phase')} since {run.get('finished_at')}, "
            f"yet the lease is held by {holder!r} for {left} ms more; requests meanwhile are "
            "dropped as 'coalesced' (services/scheduler/handlers.py on_run_requested)")
        self.log(f"  FINDING: {self.findings[-1]}")
        deadline = time.monotonic() + max(left, 0) / 1000 + 10
        while self.lease()[0] is not None and time.monotonic() < deadline:
            time.sleep(1)
        self.sync()

    # --- conflicts -------------------------------------------------------------------------

    def conflicts(self, state: str | None = None) -> list[dict]:
        params = {"connector": self.cid, "limit": 10000} | ({"state": state} if state else {})
        return self.call("GET", "/conflicts", params=params).json()

    def resolve_open(self) -> int:
        done = 0
        for rec in self.conflicts("open"):
            winner = self.rng.choice(WINNERS)
            snapshot = self._snapshot(rec)
            resp = self.call("POST", f"/conflicts/{rec['id']}/resolve",
                             json={"winner": winner, "resolved_by": "chaos@example.com"})
            if resp.status_code != 202:
                continue  # superseded meanwhile by a newer detection
            self.ledger.decision(Decision(rec["id"], rec["path"], winner, self.ledger.round,
                                          *snapshot))
            self.winners[winner] += 1
            done += 1
            self.log(f"  conflict {rec['id'][:8]} {rec['path']}: {winner}")
        return done

    def _snapshot(self, rec: dict) -> tuple[str | None, str | None, bool]:
        """What each side holds at the conflict's path now, and whether those are the versions
        it was detected with."""
        full = self.smb.root / rec["path"]
        try:
            st, data = full.stat(), full.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            st, data = None, None
        got = self.s3.read(rec["path"])
        detected = rec["source_version"]
        source_ok = st is not None and data is not None and st.st_size == detected["size"] \
            and abs(st.st_mtime_ns - detected["mtime_ns"]) < 1000
        target_ok = got is not None and hashlib.md5(got[0]).hexdigest() == \
            (rec["scaidrive"]["etag"] or "").strip('"')
        return (digest(data) if data is not None else None,
                digest(got[0]) if got is not None else None, source_ok and target_ok)

    def pending_decisions(self) -> list[dict]:
        return [c for c in self.conflicts("resolved") if not c.get("applied_at")]

    def reapply_failed(self) -> None:
        for rec in self.pending_decisions():
            if rec.get("apply_failed"):
                self.call("POST", f"/conflicts/{rec['id']}/reapply")
                self.reapplied += 1

    def wait_decisions(self, timeout: float = 90) -> list[dict]:
        """Until every decision is applied or superseded; those still pending at the end."""
        deadline = time.monotonic() + timeout
        while (pending := self.pending_decisions()) and time.monotonic() < deadline:
            self.reapply_failed()
            time.sleep(1)
        return pending

    # --- held deletions ----------------------------------------------------------------------

    def settle_held(self) -> None:
        held = self.call("GET", f"/connectors/{self.cid}/held-deletes").json()
        if not held["count"]:
            return
        decision = self.rng.choice(("approve", "reject"))
        self.call("POST", f"/connectors/{self.cid}/held-deletes/{decision}")
        self.held[decision] += 1
        self.log(f"  held deletions ({held['count']}): {decision}")

    # --- the end -----------------------------------------------------------------------------

    def quiesce(self, passes: int = 10) -> int:
        """Settle everything, run until a run has nothing to do; the number of runs it took."""
        last: dict = {}
        for n in range(1, passes + 1):
            self.resolve_open()
            self.settle_held()
            stuck = self.wait_decisions()
            view = self.sync_and_wait()
            run, progress = view["status"]["run"], view["status"]["progress"]
            busy = {k: progress[k] for k in BUSY if progress.get(k)}
            last = {"outcome": run.get("outcome"), "busy": busy, "stuck": len(stuck),
                    "held": run.get("deletes_held"), "open": len(self.conflicts("open"))}
            self.log(f"  quiesce run {n}: {last}")
            if run.get("outcome") == "success" and not busy and not stuck and \
                    not run.get("deletes_held") and not last["open"]:
                return n
        raise NotQuiet(f"not quiet after {passes} runs: {last}; failures: " + self.call(
            "GET", f"/connectors/{self.cid}/failures").text[:3000])
