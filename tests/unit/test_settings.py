"""A service started with bad settings names the variable and exits non-zero."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"SCAIDRIVE_S3_ACCESS_KEY": "k", "SCAIDRIVE_S3_SECRET_KEY": "s",
        "SCAIDRIVE_SECRET_KEY": "2bZ0cJq5Rzv3l8E0GqfP6oQmYwR4c9x1uT7yH3kL5nA=",
        "SCAIDRIVE_API_TOKEN": "a-long-enough-token"}


def run(service: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCAIDRIVE_")}
    return subprocess.run([sys.executable, "-m", f"services.{service}"], cwd=ROOT,
                          env=clean | env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("service,env,variable", [
    ("scanner", {k: v for k, v in GOOD.items() if k != "SCAIDRIVE_SECRET_KEY"},
     "SCAIDRIVE_SECRET_KEY"),
    ("transfer", GOOD | {"SCAIDRIVE_SECRET_KEY": "not-a-fernet-key"}, "SCAIDRIVE_SECRET_KEY"),
    ("scheduler", GOOD | {"SCAIDRIVE_S3_ENDPOINT": "ftp://x"}, "SCAIDRIVE_S3_ENDPOINT"),
    ("scanner", GOOD | {"SCAIDRIVE_FULL_LISTING_DAYS": "-1"}, "SCAIDRIVE_FULL_LISTING_DAYS"),
    ("api", GOOD | {"SCAIDRIVE_API_PORT": "eighty"}, "SCAIDRIVE_API_PORT"),
    ("api", {k: v for k, v in GOOD.items() if k != "SCAIDRIVE_API_TOKEN"}, "SCAIDRIVE_API_TOKEN"),
])
def test_bad_setting_is_named(service, env, variable):
    result = run(service, env)
    assert result.returncode == 2
    assert variable in result.stderr and "Traceback" not in result.stderr
    assert "not-a-fernet-key" not in result.stderr  # even a wrong secret is not echoed
