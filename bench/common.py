"""What every benchmark shares: the real servers (Samba, moto_server S3,
optionally a Redis of its own so command counts are the benchmark's alone), the reference tools
(rclone, smbclient) on the same source and sink, and the measurements (time, VmHWM, bytes on
the wire through a counting TCP proxy, Redis commandstats)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIB = 1024 * 1024


def own_redis(work: Path) -> subprocess.Popen:
    """A private redis-server (no persistence): its INFO commandstats count only our commands.
    Must run before tests.fixtures.stack is imported (it reads TEST_REDIS_URL then)."""
    from tests.fixtures.net import free_port, wait_port
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(work)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_port(port, proc=proc)
    os.environ["TEST_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    return proc


@dataclass
class Endpoint:
    """What Stack needs of an S3 server; lets a proxy stand in front of moto."""

    endpoint: str
    access_key: str
    secret_key: str


class Servers:
    """Samba and moto_server, started together. Samba keeps its default signing policy (offered,
    not demanded): we and smbclient sign, while rclone 1.60 does not, and against a server that
    demands signing it fails its large reads ("invalid response error: signing required")."""

    def __init__(self, prefix: str, redis: bool = False):
        from tests.fixtures.s3 import S3Server
        from tests.fixtures.samba import SambaServer
        # SIGTERM (a stopped benchmark) unwinds through `finally`: no server outlives it.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        self.work = Path(tempfile.mkdtemp(prefix=prefix))
        self.stacks: list = []
        self.redis = own_redis(self.work) if redis else None
        self.samba = SambaServer().start()
        self.s3 = S3Server(self.work / "s3.log")
        self.share = self.samba.share_dir

    def stack(self, workers: int = 2, s3=None, graph=None, **env: str):
        """The services at `scaidrive-connectors up` defaults, not the test stack's overrides:
        INFO logs, 8 MiB parts, 8 + 4 lane shards, the scheduler's 1 s tick and 15 s sweep, a
        scan's chunk of 1,000 (the test stacks' 100 would make a scan's round trips 10x)."""
        from tests.fixtures.stack import Stack
        env = {"SCAIDRIVE_LOG_LEVEL": "INFO", "SCAIDRIVE_PART_SIZE_MB": "8",
               "SCAIDRIVE_LANES_MAIN": "8", "SCAIDRIVE_LANES_BULK": "4",
               "SCAIDRIVE_SCHEDULER_TICK_S": "1", "SCAIDRIVE_SCHEDULER_SWEEP_S": "15",
               "SCAIDRIVE_SCAN_CHUNK": "1000"} | env
        stack = Stack(s3 or self.s3, self.work, graph, **env)
        self.stacks.append(stack)  # stopped with the servers even if starting it fails
        return stack.start(workers, api_timeout=120)  # a loaded machine, a cluster to reach

    def stop(self) -> None:
        for stack in self.stacks:
            if any(p.poll() is None for p in stack.procs.values()):
                stack.stop()
        self.s3.stop()
        self.samba.stop()
        if self.redis:
            self.redis.terminate()
            self.redis.wait(10)


# --- source trees ---------------------------------------------------------------------------

def make_files(root: Path, folder: str, count: int, size: int, per_dir: int = 0,
               seed: int = 7) -> None:
    """`count` files of `size` bytes (random, incompressible) under `folder`, `per_dir` a folder
    (0: all in one folder)."""
    rng = random.Random(seed)
    for i in range(count):
        sub = f"{folder}/d{i // per_dir:04d}" if per_dir else folder
        path = root / sub / f"f{i:06d}.bin"
        if i == 0 or (per_dir and i % per_dir == 0):
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size) if size else b"")


def make_large(root: Path, rel: str, size: int) -> None:
    from tests.e2e.helpers import write_random
    write_random(root, rel, size)


# --- the reference tools ----------------------------------------------------------------------

def rclone(srv: Servers, *args: str, folder: str = "", bucket: str | None = None,
           capture: bool = False) -> tuple[float, str]:
    """Run `rclone <args> :smb:share/folder [:s3:bucket]` against our servers; (seconds, stdout)."""
    samba, s3 = srv.samba, srv.s3
    obscured = subprocess.run(["rclone", "obscure", samba.password], capture_output=True,
                              text=True, check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # breaks rclone's S3
    remotes = [f":smb:{samba.share}/{folder}"] + ([f":s3:{bucket}"] if bucket else [])
    cmd = ["rclone", *args, "--s3-provider", "Other", "--s3-endpoint", s3.endpoint,
           "--s3-access-key-id", s3.access_key, "--s3-secret-access-key", s3.secret_key,
           "--s3-region", "us-east-1", "--smb-host", "127.0.0.1", "--smb-port", str(samba.port),
           "--smb-user", samba.username, "--smb-pass", obscured, *remotes]
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                         text=True)
    took = time.perf_counter() - start
    if out.returncode not in (0, 1):  # check exits 1 on differences; copy may retry and pass
        raise RuntimeError(f"rclone {args[0]} exited {out.returncode}")
    return took, out.stdout or ""


def smbclient_get(srv: Servers, rel: str) -> float:
    """`smbclient get` to /dev/null, signing required: the SMB read limit of this machine."""
    samba = srv.samba
    cmd = ["smbclient", f"//127.0.0.1/{samba.share}", "-p", str(samba.port),
           "-U", f"{samba.username}%{samba.password}", "--client-protection=sign",
           "-c", f"get {rel.replace('/', chr(92))} /dev/null"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


# --- our side -------------------------------------------------------------------------------

def connector(api, srv: Servers, name: str, folder: str, **extra) -> str:
    """Share `name` and a connector syncing `folder` into it (encryption off by default: every
    client in a comparison then signs and nobody seals)."""
    from tests.e2e.helpers import new_connector
    return new_connector(api, srv.samba, name, folder, **({"smb_encryption": "off"} | extra))["id"]


def first_sync(api, srv: Servers, name: str, folder: str, timeout: float = 7200,
               **extra) -> tuple[float, str, dict]:
    """(wall seconds from creating the connector to its first run's end, id, view)."""
    from tests.fixtures.stack import wait_run
    start = time.perf_counter()
    cid = connector(api, srv, name, folder, **extra)
    view = wait_run(api, cid, timeout=timeout)
    took = time.perf_counter() - start
    assert view["status"]["run"]["outcome"] == "success", view["status"]
    return took, cid, view


def resync(api, cid: str, timeout: float = 7200) -> tuple[float, dict]:
    from tests.fixtures.stack import sync_and_wait
    start = time.perf_counter()
    view = sync_and_wait(api, cid, timeout=timeout)
    assert view["status"]["run"]["outcome"] == "success", view["status"]
    return time.perf_counter() - start, view


def vmhwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def cpu_s(pid: int) -> float:
    """utime + stime of a process and its reaped children, in seconds (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


def workers_peak_mib(stack) -> float:
    return max(vmhwm_mib(stack.procs[label].pid) for label in stack.workers())


def fresh_scanner(stack) -> int:
    """Replace the scanner by a new process (its VmHWM then covers only what comes next)."""
    for old in [k for k, p in stack.procs.items() if k.startswith("scanner") and p.poll() is None]:
        stack.kill(old)
    label = stack.spawn("scanner")
    pid = stack.procs[label].pid
    # Started once its memory stops growing (imports, broker connection): a fixed sleep read a
    # half-imported process on a loaded machine.
    last, steady, deadline = 0.0, 0, time.monotonic() + 60
    while steady < 3 and time.monotonic() < deadline:
        time.sleep(1)
        now = vmhwm_mib(pid)
        steady, last = (steady + 1 if now == last else 0), now
    return pid


def redis_commands(url: str | None = None) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats)."""
    import redis
    r = redis.Redis.from_url(url or os.environ["TEST_REDIS_URL"])
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in r.info("commandstats").items()}


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    out = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v}


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table (pasted into docs/PERFORMANCE.md as is)."""
    def cell(v) -> str:
        return f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def counting_proxy(port: int):
    """The tests' TCP proxy in front of `port`, counting both ways: `bytes_up` (client to server:
    for S3, what we upload) and `bytes_down` (server to client: for SMB, what we read)."""
    from tests.fixtures.proxy import TcpProxy

    class Counting(TcpProxy):
        bytes_down = 0

        def _count_down(self, n: int) -> bool:
            with self._lock:
                self.bytes_down += n
            return super()._count_down(n)

        def reset(self) -> None:
            with self._lock:
                self.bytes_up = self.bytes_down = 0

    return Counting(port)
