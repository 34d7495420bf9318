"""Message contracts: versioned, strict, and free of secrets."""
import pytest
from pydantic import ValidationError

from shared.contracts import (
    ChangeKind,
    Contract,
    FileChanged,
    FileVersion,
    Owner,
    ScanRequested,
    TransferJob,
    UnknownMessage,
    decode,
)


def test_round_trip_through_the_wire_format():
    msg = TransferJob(connector_id="c", run_id="r", job_id="j", kind=ChangeKind.CREATED,
                      path="Ünï/a.txt", version=FileVersion(size=3, mtime_ns=1, file_id="9"),
                      owner=Owner(user_id="system", source_principal="S-1-5-21-1-2-3-1000"))
    back = decode("TransferJob", msg.model_dump_json().encode())
    assert back == msg and back.schema_version == 1


def test_unknown_type_and_bad_body_are_refused():
    with pytest.raises(UnknownMessage):
        decode("Nope", b"{}")
    with pytest.raises(ValidationError):
        decode("ScanRequested", b'{"connector_id": "c"}')
    with pytest.raises(ValidationError):  # a future schema version is not silently accepted
        decode("ScanRequested", b'{"connector_id": "c", "run_id": "r", "schema_version": 2}')
    with pytest.raises(ValidationError):  # unknown fields are refused, not dropped
        decode("ScanRequested", b'{"connector_id": "c", "run_id": "r", "password": "x"}')


def test_contracts_carry_no_credentials():
    for name, model in Contract.registry.items():
        fields = set(model.model_fields)
        assert not fields & {"password", "secret", "client_secret", "token"}, name


def test_change_needs_a_known_kind():
    with pytest.raises(ValidationError):
        FileChanged(connector_id="c", run_id="r", job_id="j", kind="renamed", path="a")
    assert ScanRequested(connector_id="c", run_id="r").reason == "schedule"
