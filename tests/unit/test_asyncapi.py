"""docs/asyncapi.json is generated from the contracts: a contract change without regenerating
it fails here, and every event's example is valid against its own schema."""
import importlib.util
import json
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENTS = {"sync.completed": "SyncCompleted", "connector.auth_failed": "ConnectorAuthFailed",
          "connector.deletes_held": "DeletesHeld", "conflict.detected": "ConflictDetected",
          "conflict.resolved": "ConflictResolved", "conflict.superseded": "ConflictSuperseded",
          "share.quota_warning": "ShareQuotaWarning"}


def _script():
    spec = importlib.util.spec_from_file_location("asyncapi", ROOT / "scripts" / "asyncapi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads((ROOT / "docs" / "asyncapi.json").read_text(encoding="utf-8"))


def test_committed_document_is_up_to_date(doc):
    script = _script()
    assert (ROOT / "docs" / "asyncapi.json").read_text(encoding="utf-8") == script.render(), \
        "docs/asyncapi.json is out of date: run python scripts/asyncapi.py"


def test_every_platform_event_is_described(doc):
    assert doc["asyncapi"].startswith("2.6")
    assert set(doc["channels"]) == set(EVENTS)
    for key, name in EVENTS.items():
        exchange = doc["channels"][key]["bindings"]["amqp"]["exchange"]
        assert exchange["name"].endswith(".events") and exchange["type"] == "topic"
        msg = doc["components"]["messages"][key]
        assert msg["bindings"]["amqp"]["messageType"] == name
        assert msg["headers"]["properties"]["type"]["const"] == name
        assert msg["payload"] == {"$ref": f"#/components/schemas/{name}"}


@pytest.mark.parametrize("key", sorted(EVENTS))
def test_example_validates_against_its_schemas(doc, key):
    msg = doc["components"]["messages"][key]
    payload_schema = {"$ref": msg["payload"]["$ref"], "components": doc["components"]}
    for example in msg["examples"]:
        jsonschema.validate(example["payload"], payload_schema,
                            cls=jsonschema.Draft202012Validator)
        jsonschema.validate(example["headers"], msg["headers"],
                            cls=jsonschema.Draft202012Validator)
        assert example["payload"]["event"] == key


def test_schema_rejects_what_the_contract_rejects(doc):
    """The schemas are strict like the contracts: an unknown field or version is invalid."""
    schema = {"$ref": "#/components/schemas/ConflictResolved", "components": doc["components"]}
    example = doc["components"]["messages"]["conflict.resolved"]["examples"][0]["payload"]
    for bad in (example | {"password": "x"}, example | {"schema_version": 2},
                example | {"winner": "nobody"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)
