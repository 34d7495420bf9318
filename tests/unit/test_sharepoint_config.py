"""SharePoint connector fields: refused on save with the field named, secrets never shown."""
import datetime as dt
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from shared.config.connector_model import Connector, ConnectorUpdate, parse_create

SP = dict(kind="sharepoint", name="team docs", tenant_id=str(uuid.uuid4()),
          client_id=str(uuid.uuid4()), client_secret="s3cret-value", site_url=
          "https://contoso.sharepoint.com/sites/team", library="Documents", target_share="team")


def _pem(password: bytes | None = None) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scaidrive")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    enc = serialization.BestAvailableEncryption(password) if password \
        else serialization.NoEncryption()
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
            + cert.public_bytes(serialization.Encoding.PEM)).decode()


def _errors(body: dict) -> list[tuple]:
    with pytest.raises(ValidationError) as err:
        parse_create(body)
    return [(e["loc"], e["msg"]) for e in err.value.errors()]


def test_a_valid_sharepoint_body_parses_with_secret_hidden():
    body = parse_create(SP)
    assert body.kind == "sharepoint" and body.site_url.endswith("/sites/team")
    assert "s3cret-value" not in repr(body)


@pytest.mark.parametrize("field,value", [
    ("tenant_id", "contoso"), ("client_id", "not-a-guid"), ("site_url", "http://contoso/sites/x"),
    ("site_url", "contoso.sharepoint.com/sites/team"), ("library", ""),
])
def test_bad_fields_are_named(field, value):
    assert _errors(SP | {field: value})[0][0] == ("sharepoint", field)


def test_exactly_one_credential():
    none = {k: v for k, v in SP.items() if k != "client_secret"}
    assert "exactly one" in _errors(none)[0][1]
    assert "exactly one" in _errors(SP | {"certificate": _pem()})[0][1]


def test_a_certificate_with_its_password_is_accepted_and_a_wrong_password_refused():
    cert_body = {k: v for k, v in SP.items() if k != "client_secret"}
    pem = _pem(b"pw-1234")
    assert parse_create(cert_body | {"certificate": pem, "certificate_password": "pw-1234"})
    msg = _errors(cert_body | {"certificate": pem, "certificate_password": "wrong"})[0][1]
    assert "private key" in msg and "pw-1234" not in msg
    assert "no PEM certificate" in _errors(cert_body | {"certificate": "garbage"})[0][1]


def test_update_refuses_two_credentials_at_once():
    with pytest.raises(ValidationError, match="not both"):
        ConnectorUpdate(client_secret="a", certificate=_pem())


def test_public_view_holds_no_secret_and_only_its_own_kind():
    c = Connector(kind="sharepoint", name="n", tenant_id=SP["tenant_id"],
                  client_id=SP["client_id"], credential="client_secret",
                  client_secret_enc="gAAAA-cipher", site_url=SP["site_url"],
                  library="Documents", drive_id="b!x", target_share="team", schedule="15m")
    view = c.public()
    assert "gAAAA-cipher" not in str(view) and not any(k.endswith("_enc") for k in view)
    assert view["credential"] == "client_secret" and "server" not in view
    smb = Connector(name="n", server="smb://h/s", username="u", password_enc="gAAAA-x",
                    target_share="team", schedule="15m")
    assert "site_url" not in smb.public() and "gAAAA-x" not in str(smb.public())
