"""docker-compose.yml, checked without a Docker engine: it parses, every service's command is a
module of this code, its settings are names the code reads, images are pinned, and services
start after what they need is healthy."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from shared.config.settings import ApiSettings, ConflictSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = {name: svc for name, svc in SERVICES.items() if svc.get("image", "").startswith(
    "scaidrive-connectors:")}
SETTINGS = {"api": ApiSettings, "conflicts": ConflictSettings}
OTEL_NAMES = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_METRICS_EXPORTER", "OTEL_TRACES_EXPORTER"}


def test_every_service_of_the_pipeline_is_there():
    assert set(OURS) == {"api", "scheduler", "scanner", "identity", "transfer", "conflicts"}
    assert {"rabbitmq", "redis", "minio", "samba", "mailpit", "jaeger"} <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(OURS))
def test_command_runs_a_module_of_this_code(name):
    command = OURS[name]["command"]
    assert command[:2] == ["python", "-m"]
    assert importlib.util.find_spec(command[2] + ".__main__") is not None, command


@pytest.mark.parametrize("name", sorted(OURS))
def test_settings_are_names_the_code_reads(name):
    fields = set(SETTINGS.get(name, Settings).model_fields)
    for var in OURS[name]["environment"]:
        if var.startswith("SCAIDRIVE_"):
            assert var.removeprefix("SCAIDRIVE_").lower() in fields, f"{name}: {var}"
        else:
            assert var in OTEL_NAMES, f"{name}: {var}"
    required = {f for f, info in SETTINGS.get(name, Settings).model_fields.items()
                if info.is_required()}
    given = {v.removeprefix("SCAIDRIVE_").lower() for v in OURS[name]["environment"]}
    assert required <= given, f"{name} misses {required - given}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name):
    image = SERVICES[name]["image"]
    repo, _, tag = image.rpartition(":")
    assert repo and tag and tag != "latest" and re.search(r"\d", tag), image


def test_dependencies_wait_for_health():
    for name, svc in OURS.items():
        needs = svc["depends_on"]
        for infra in ("rabbitmq", "redis", "minio"):
            assert needs[infra]["condition"] == "service_healthy", name
            assert "healthcheck" in SERVICES[infra], infra
    assert OURS["conflicts"]["depends_on"]["mailpit"]["condition"] == "service_healthy"


def test_transfer_scales_and_drains():
    transfer = OURS["transfer"]
    assert "ports" not in transfer and "container_name" not in transfer  # --scale needs both
    grace = int(transfer["stop_grace_period"].rstrip("s"))
    assert grace > float(transfer["environment"]["SCAIDRIVE_DRAIN_TIMEOUT_S"])


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "docker/samba/Dockerfile"])
def test_base_images_are_pinned(dockerfile):
    for line in (ROOT / dockerfile).read_text().splitlines():
        if line.startswith("FROM "):
            assert re.fullmatch(r"FROM [\w./-]+:\d[\w.-]*", line.strip()), line
