"""The pure parts of alerts: a certificate's expiry read from its PEM, the mails' plain words,
and which Graph 403s mean "no access to the site" (the connector is held) rather than one
file's permission."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kiota_abstractions.api_error import APIError

from services.conflicts.alerts import Condition, certificate_expiry, render_alert
from shared import errors
from shared.config.connector_model import Connector
from shared.config.settings import ConflictSettings
from shared.sources.sharepoint.graph_errors import SiteAccessDenied, to_sync_error

NOT_AFTER = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def _pem(not_after: datetime) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(not_after - timedelta(days=365)).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return (key_pem + cert.public_bytes(serialization.Encoding.PEM)).decode()


def test_certificate_expiry_is_its_not_after():
    assert certificate_expiry(_pem(NOT_AFTER)) == NOT_AFTER
    assert certificate_expiry("no certificate here") is None


def _settings() -> ConflictSettings:
    return ConflictSettings(s3_access_key="k", s3_secret_key="s",  # type: ignore[arg-type]
                            secret_key="ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
                            console_url="https://console.test", smtp_from="sd@example.com")


def test_mails_say_which_connector_what_happened_and_what_to_do():
    c = Connector(id="c1", name="Finance", target_share="fin", schedule="15m",
                  kind="sharepoint", max_delete_percent=40)
    cases = {
        "auth_failed": ({"error": "AADSTS7000215: invalid secret"}, "AADSTS7000215"),
        "stale": ({"last_success_at": "1767225600"}, "2026-01-01 00:00 UTC"),
        "deletes_held": ({"count": 7}, "limit of 40%"),
        "quota": ({"usage": 95, "quota": 100}, "95.0%"),
        "credential_expiry": ({"what": "certificate", "expires_at": NOT_AFTER},
                              "Certificates & secrets"),
    }
    for name, (facts, says) in cases.items():
        mail = render_alert(c, Condition(name, facts=facts), ["a@example.com"], _settings())
        body = mail.get_content()
        assert mail["Subject"].startswith("[ScaiDrive] Finance: ")
        assert mail["X-ScaiDrive-Alert"] == name and mail["To"] == "a@example.com"
        assert says in body and "What to do" in body, name
        assert "https://console.test/connectors/c1" in body


def _api_error(status: int) -> APIError:
    exc = APIError("Access denied")
    exc.response_status_code = status
    return exc


def test_a_403_on_the_site_or_library_holds_the_connector_a_403_on_a_file_does_not():
    site = to_sync_error(_api_error(403), "")
    assert isinstance(site, SiteAccessDenied) and site.cause == "auth_failed"
    assert "Sites.Selected" in str(site) and "Sites.ReadWrite.All" in str(site)
    assert isinstance(to_sync_error(_api_error(403), None), SiteAccessDenied)
    one_file = to_sync_error(_api_error(403), "Reports/q1.xlsx")
    assert type(one_file) is errors.PermissionDenied
