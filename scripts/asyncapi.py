"""Generate docs/asyncapi.json: the platform events ScaiDrive Connectors publishes, from the
pydantic contracts themselves (so the document cannot drift from the code unnoticed:
tests/unit/test_asyncapi.py compares the committed file with a fresh generation).

    python scripts/asyncapi.py           # write docs/asyncapi.json
    python scripts/asyncapi.py --check   # exit 1 if it is out of date
"""
from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from pydantic.json_schema import models_json_schema

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.contracts import (  # noqa: E402
    SCHEMA_VERSION,
    ConflictDetected,
    ConflictResolved,
    ConflictSuperseded,
    ConnectorAuthFailed,
    Contract,
    DeletesHeld,
    FileVersion,
    RunCounts,
    ShareQuotaWarning,
    SideVersion,
    SyncCompleted,
)

OUT = ROOT / "docs" / "asyncapi.json"
EXCHANGE = "scaidrive.events"  # {SCAIDRIVE_NAMESPACE}.events; "scaidrive" is the default
REF = "#/components/schemas/{model}"
T = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


def _side(etag: str, editor: str = "alice@contoso.com") -> SideVersion:
    """One side's version in the conflict example (both sides: the same size and time)."""
    return SideVersion(size=52_431, mtime=T, editor=editor, etag=etag)


def examples() -> dict[str, Contract]:
    """One fixed example per event (fixed values: the output must be reproducible)."""
    return {
        "sync.completed": SyncCompleted(
            connector_id="3f9a1c2b7d4e", run_id="r-20260115-0930", outcome="success",
            started_at=T, finished_at=T, duration_s=42.5,
            counts=RunCounts(files_scanned=1200, files_transferred=12,
                             bytes_transferred=8_388_608)),
        "connector.auth_failed": ConnectorAuthFailed(
            connector_id="3f9a1c2b7d4e", connector_name="Finance", kind="sharepoint",
            run_id="r-20260115-0930", error="AADSTS7000222: the client secret has expired", at=T),
        "connector.deletes_held": DeletesHeld(
            connector_id="3f9a1c2b7d4e", connector_name="Finance", run_id="r-20260115-0930",
            side="source", count=640, total=1000, sample=["Archive/2019/a.pdf"], at=T),
        "share.quota_warning": ShareQuotaWarning(
            share="finance", usage_bytes=966_367_641, quota_bytes=1_073_741_824, percent=90.0,
            connector_ids=["3f9a1c2b7d4e"], at=T),
        "conflict.detected": ConflictDetected(
            conflict_id="9b1f0c77a2e34d10", connector_id="3f9a1c2b7d4e", connector_name="Finance",
            path="Reports/Q1.xlsx", source=_side('"{5E1A},4"'),
            scaidrive=_side("d41d8cd98f00b204", editor="u-bob"),
            source_version=FileVersion(size=52_431, mtime_ns=1_768_469_400_000_000_000,
                                       file_id="01ABCDEF", content_tag="aGVsbG8="),
            policy="manual", detected_at=T),
        "conflict.resolved": ConflictResolved(
            conflict_id="9b1f0c77a2e34d10", connector_id="3f9a1c2b7d4e", path="Reports/Q1.xlsx",
            winner="scaidrive", resolved_by="carol@contoso.com", resolved_at=T),
        "conflict.superseded": ConflictSuperseded(
            conflict_id="9b1f0c77a2e34d10", connector_id="3f9a1c2b7d4e", path="Reports/Q1.xlsx",
            reason="the source version changed since detection", winner="scaidrive",
            resolved_by="carol@contoso.com", superseded_at=T),
    }


def _headers(name: str) -> dict:
    return {"type": "object", "properties": {
        "type": {"const": name, "description": "AMQP basic property `type`: the contract's "
                                               "class name (unknown types are dead-lettered)"},
        "schema_version": {"const": SCHEMA_VERSION, "description": "the body's schema_version "
                           "field: a consumer refuses versions it does not know"},
        "content_type": {"const": "application/json", "description": "AMQP content_type"},
        "traceparent": {"type": "string", "description": "W3C trace context (AMQP header)"},
    }, "required": ["type", "schema_version"]}


def _message(key: str, msg: Contract) -> dict:
    name = type(msg).__name__
    return {
        "name": name, "title": key, "summary": (type(msg).__doc__ or "").strip().split("\n")[0],
        "description": " ".join((type(msg).__doc__ or "").split()),
        "contentType": "application/json",
        "headers": _headers(name),
        "payload": {"$ref": REF.format(model=name)},
        "bindings": {"amqp": {"messageType": name, "contentEncoding": "utf-8",
                              "bindingVersion": "0.3.0"}},
        "examples": [{"name": key, "headers": {"type": name, "schema_version": SCHEMA_VERSION,
                                               "content_type": "application/json"},
                      "payload": msg.model_dump(mode="json")}],
    }


def _channel(key: str) -> dict:
    return {
        "description": f"Routing key `{key}` on the `{{ns}}.events` topic exchange.",
        "bindings": {"amqp": {"is": "routingKey", "bindingVersion": "0.3.0", "exchange": {
            "name": EXCHANGE, "type": "topic", "durable": True, "autoDelete": False,
            "vhost": "/"}}},
        "subscribe": {"operationId": "on_" + key.replace(".", "_"),
                      "summary": f"`{key}` events, persistent; bind a queue to receive them",
                      "message": {"$ref": f"#/components/messages/{key}"}},
    }


def build() -> dict:
    events = examples()
    _, defs = models_json_schema([(type(m), "validation") for m in events.values()],
                                 ref_template=REF)
    return {
        "asyncapi": "2.6.0",
        "id": "urn:scaidrive:connectors:events",
        "info": {
            "title": "ScaiDrive Connectors platform events", "version": str(SCHEMA_VERSION),
            "description": "Events published on the `{ns}.events` topic exchange "
                           "({ns} = SCAIDRIVE_NAMESPACE, default `scaidrive`). Messages are "
                           "persistent JSON; the AMQP `type` property names the contract. "
                           "Generated by scripts/asyncapi.py from shared/contracts.py.",
        },
        "defaultContentType": "application/json",
        "servers": {"rabbitmq": {"url": "amqp://127.0.0.1:5672/", "protocol": "amqp",
                                 "protocolVersion": "0.9.1",
                                 "description": "SCAIDRIVE_AMQP_URL"}},
        "channels": {key: _channel(key) for key in events},
        "components": {
            "messages": {key: _message(key, m) for key, m in events.items()},
            "schemas": defs["$defs"],
        },
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python scripts/asyncapi.py")
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
