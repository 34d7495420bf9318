"""Form errors in plain words, from pydantic's own errors (services/api/form_errors.py)."""
from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from services.api.form_errors import plain_message
from shared.config.connector_model import ConnectorCreate

CREATE: TypeAdapter = TypeAdapter(ConnectorCreate)
BASE = {"kind": "smb", "name": "n", "server": "smb://h/s", "username": "u", "password": "p",
        "target_share": "share-1", "schedule": "1h"}


def errors(**body) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        CREATE.validate_python(BASE | body)
    return {".".join(str(p) for p in e["loc"][1:]): plain_message(dict(e))
            for e in info.value.errors()}


def test_empty_and_out_of_range_fields_say_so_plainly():
    got = errors(name="", max_delete_percent=150)
    assert got["name"] == "required: fill this in"
    assert got["max_delete_percent"] == "must be 100 or less"


def test_our_own_checks_lose_pydantic_s_prefix():
    got = errors(server="http://h/s")
    assert not any(m.startswith("Value error") for m in got.values()) and got["server"]


def test_a_missing_field_and_an_unknown_one():
    with pytest.raises(ValidationError) as info:
        CREATE.validate_python({k: v for k, v in BASE.items() if k != "username"}
                                       | {"colour": "blue"})
    got = {e["loc"][-1]: plain_message(dict(e)) for e in info.value.errors()}
    assert got["username"] == "required: fill this in"
    assert got["colour"] == "not a field of this form"
