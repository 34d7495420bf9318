"""Demo sync: a local Samba share with a few files -> the stack (`scaidrive-connectors up`)
-> an S3 bucket, driven through the operator CLI. Everything runs on loopback and stops at the end.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.fixtures.net import free_port, wait_port  # noqa: E402
from tests.fixtures.s3 import S3Server  # noqa: E402
from tests.fixtures.samba import SambaServer  # noqa: E402


def cli(env: dict, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    print(f"$ scaidrive-connectors {' '.join(args)}\n{out}")
    return out


def show_bucket(s3) -> None:
    print("objects in bucket demo-share:")
    for obj in s3.client().list_objects("demo-share", recursive=True):
        print(f"  {obj.size:>10}  {obj.object_name}")
    print()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="scaidrive-demo-"))
    samba = SambaServer()
    samba.start()
    s3 = S3Server(work / "s3.log")
    demo = samba.share_dir / "demo"
    (demo / "Reports/2026").mkdir(parents=True, exist_ok=True)
    (demo / "Reports/2026/q3.txt").write_text("Quarterly report\n")
    (demo / "Ünïcødé名前.txt").write_text("unicode names sync too\n")
    (demo / "empty.bin").write_bytes(b"")
    (demo / "photo.raw").write_bytes(os.urandom(12 * 1024 * 1024))
    port = free_port()
    env = os.environ | {
        "SCAIDRIVE_S3_ENDPOINT": s3.endpoint, "SCAIDRIVE_S3_ACCESS_KEY": s3.access_key,
        "SCAIDRIVE_S3_SECRET_KEY": s3.secret_key,
        "SCAIDRIVE_SECRET_KEY": Fernet.generate_key().decode(),
        "SCAIDRIVE_API_TOKEN": secrets.token_urlsafe(24), "SCAIDRIVE_API_PORT": str(port),
        "SCAIDRIVE_NAMESPACE": "demo" + secrets.token_hex(3), "SMB_PASSWORD": samba.password}
    stack = subprocess.Popen([sys.executable, "-m", "services.cli", "up",
                              "--transfer-workers", "2"], env=env, cwd=ROOT,
                             stderr=open(work / "stack.log", "wb"))
    try:
        wait_port(port, proc=stack)
        cli(env, "shares", "create", "demo-share")
        created = cli(env, "connectors", "create", "--name", "Demo share",
                      "--server", f"smb://127.0.0.1:{samba.port}/{samba.share}/demo",
                      "--username", samba.username, "--target-share", "demo-share",
                      "--schedule", "15m")
        cid = [line for line in created.splitlines() if '"id"' in line][0].split('"')[3]
        print("the first sync starts on its own; waiting for it")
        cli(env, "connectors", "wait", cid, "--timeout", "300")
        show_bucket(s3)
        print("changing the share: one file edited, one added, one deleted")
        (demo / "Reports/2026/q3.txt").write_text("Quarterly report, revised\n")
        (demo / "Reports/2026/q4.txt").write_text("Next quarter\n")
        (demo / "empty.bin").unlink()
        cli(env, "connectors", "sync", cid, "--wait", "--timeout", "300")
        show_bucket(s3)
    finally:
        stack.terminate()
        stack.wait(30)
        s3.stop()
        samba.stop()
        print(f"service logs: {work}/stack.log")


if __name__ == "__main__":
    main()
