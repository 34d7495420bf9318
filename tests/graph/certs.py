"""Certificates made at test time: a CA, a server certificate for 127.0.0.1 signed by it, and a
self-signed application certificate (what an admin uploads to the Entra app registration)."""
import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class TlsFiles:
    ca_pem: str
    server_cert: str
    server_key: str


@dataclass
class AppCert:
    key_and_cert_pem: str  # what CertificateCredential(certificate_path=...) takes
    key_pem: str
    cert_pem: str
    certificate: x509.Certificate

    @property
    def x5t(self) -> str:
        return (base64.urlsafe_b64encode(self.certificate.fingerprint(hashes.SHA1()))
                .decode().rstrip("="))

    @property
    def x5t_s256(self) -> str:
        return (base64.urlsafe_b64encode(self.certificate.fingerprint(hashes.SHA256()))
                .decode().rstrip("="))


def make_tls(directory: Path) -> TlsFiles:
    now = dt.datetime.now(dt.UTC)
    ca_key, srv_key = _key(), _key()
    ca_name = _name("ScaiDrive test Graph CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    srv = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca_name)
           .public_key(srv_key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now - dt.timedelta(hours=1))
           .not_valid_after(now + dt.timedelta(days=2))
           .add_extension(x509.SubjectAlternativeName(
               [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
               critical=False)
           .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
           .add_extension(x509.SubjectKeyIdentifier.from_public_key(srv_key.public_key()),
                          critical=False)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                          critical=False)
           .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(str(directory / "ca.pem"), str(directory / "server.pem"),
                     str(directory / "server.key"))
    Path(files.ca_pem).write_bytes(_pem_cert(ca))
    Path(files.server_cert).write_bytes(_pem_cert(srv))
    Path(files.server_key).write_bytes(_pem_key(srv_key))
    return files


def make_app_cert(directory: Path, name: str = "app") -> AppCert:
    now = dt.datetime.now(dt.UTC)
    key = _key()
    cert = (x509.CertificateBuilder().subject_name(_name(f"scaidrive-{name}"))
            .issuer_name(_name(f"scaidrive-{name}"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .sign(key, hashes.SHA256()))
    out = AppCert(str(directory / f"{name}-key-and-cert.pem"), str(directory / f"{name}.key"),
                  str(directory / f"{name}.crt"), cert)
    Path(out.key_pem).write_bytes(_pem_key(key))
    Path(out.cert_pem).write_bytes(_pem_cert(cert))
    Path(out.key_and_cert_pem).write_bytes(_pem_key(key) + _pem_cert(cert))
    return out
