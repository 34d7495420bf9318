"""Secrets at rest: Fernet with key rotation (first key encrypts, every key decrypts)."""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr


class SecretBox:
    def __init__(self, keys: SecretStr):
        fernets = [Fernet(k.strip()) for k in keys.get_secret_value().split(",") if k.strip()]
        self._primary = fernets[0]
        self._fernet = MultiFernet(fernets)

    def seal(self, secret: SecretStr) -> str:
        return self._fernet.encrypt(secret.get_secret_value().encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "stored secret cannot be decrypted with SCAIDRIVE_SECRET_KEY") from None

    def is_current(self, token: str) -> bool:
        """Sealed with the first key already (nothing to rotate)."""
        try:
            self._primary.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same secret sealed with the first key; ValueError if no key opens it."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "stored secret cannot be decrypted with SCAIDRIVE_SECRET_KEY") from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
