"""Secrets at rest, signed tokens and the tool's RSA keys.

Everything is derived from ``LTIPRO_SECRET_KEY`` with HKDF, one derived key per purpose,
so a token signed for one purpose can never pass as another.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import RSAAlgorithm

ENCRYPTED_PREFIX = "enc:v1:"


def derive_key(secret_key: str, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose, derived from the installation's secret key."""
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=b"ltipro", info=purpose.encode()
    ).derive(secret_key.encode())


class SecretKeyMismatch(ValueError):
    """A stored secret was encrypted with another ``LTIPRO_SECRET_KEY`` than the one set."""


class SecretBox:
    """Encrypts secrets (shared secrets, private keys, client secrets) for the database."""

    def __init__(self, secret_key: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret_key, "secrets-at-rest")))

    def encrypt(self, plaintext: str) -> str:
        return ENCRYPTED_PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(ENCRYPTED_PREFIX):
            raise ValueError("stored secret is not encrypted")
        try:
            return self._fernet.decrypt(stored[len(ENCRYPTED_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretKeyMismatch(
                "a stored secret cannot be decrypted: LTIPRO_SECRET_KEY is not the key it "
                "was encrypted with"
            ) from None


class TokenError(ValueError):
    """A signed token that is malformed, tampered with, for another purpose or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Compact signed tokens (``payload.signature``) with an expiry, for one purpose."""

    def __init__(self, secret_key: str, purpose: str) -> None:
        self._key = derive_key(secret_key, f"signer:{purpose}")

    def sign(self, payload: dict[str, Any], lifetime: int) -> str:
        body = dict(payload, exp=int(time.time()) + lifetime)
        encoded = _b64(json.dumps(body, separators=(",", ":")).encode())
        mac = hmac.new(self._key, encoded.encode(), hashlib.sha256).digest()
        return f"{encoded}.{_b64(mac)}"

    def verify(self, token: str) -> dict[str, Any]:
        try:
            encoded, signature = token.split(".")
            expected = hmac.new(self._key, encoded.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(signature)):
                raise TokenError("bad signature")
            body = json.loads(_unb64(encoded))
        except TokenError:
            raise
        except Exception:
            raise TokenError("malformed token") from None
        if not isinstance(body, dict) or not isinstance(body.get("exp"), int):
            raise TokenError("malformed token")
        if body["exp"] < time.time():
            raise TokenError("expired")
        return body


def generate_rsa_key() -> tuple[str, str, dict[str, Any]]:
    """A new RSA key for signing: ``(kid, private PEM, public JWK)``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    kid = secrets.token_urlsafe(12)
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return kid, pem, jwk


@functools.lru_cache(maxsize=32)
def private_key_object(pem: str) -> Any:
    """A PEM private key, parsed once.

    Parsing checks the RSA key's consistency, which costs tens of milliseconds: far more
    than signing with it, so every signer goes through this cache.
    """
    return serialization.load_pem_private_key(pem.encode(), password=None)


def hash_api_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
