"""Admin passwords, hashed with scrypt from the standard library.

A stored hash reads ``scrypt$v1$<n>$<r>$<p>$<salt>$<hash>`` (salt and hash in URL-safe
base64): the version and the cost parameters travel with each hash, so the cost can be
raised later and existing hashes still verify (and are rehashed at the next sign-in,
see :func:`needs_rehash`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
VERSION = "v1"
# 32 MiB and about a tenth of a second per hash: slow for an attacker with a stolen
# table, bearable for a server that hashes once per sign-in.
COST_N = 2**15
BLOCK_SIZE_R = 8
PARALLELISM_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_LENGTH = 12
# scrypt accepts any length; a cap keeps a megabyte "password" from being a cheap attack.
MAX_LENGTH = 1024


class PasswordError(ValueError):
    """A password that cannot be used; the message says what a good one needs."""


def check_password_rules(password: str) -> None:
    """Raise :class:`PasswordError` for a password too short, too long or blank."""
    if not password.strip():
        raise PasswordError("the password must not be empty")
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"the password must be at most {MAX_LENGTH} characters long")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=n,
        r=r,
        p=p,
        # scrypt needs 128 * n * r bytes; the default limit (32 MiB) is just too small.
        maxmem=256 * n * r,
        dklen=HASH_BYTES,
    )


def hash_password(password: str) -> str:
    """A new hash of ``password`` with a fresh random salt, in the versioned format."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _derive(password, salt, COST_N, BLOCK_SIZE_R, PARALLELISM_P)
    return "$".join(
        (
            SCHEME,
            VERSION,
            str(COST_N),
            str(BLOCK_SIZE_R),
            str(PARALLELISM_P),
            _b64(salt),
            _b64(digest),
        )
    )


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 7 or parts[0] != SCHEME or parts[1] != VERSION:
        return None
    try:
        n, r, p = int(parts[2]), int(parts[3]), int(parts[4])
        salt, digest = _unb64(parts[5]), _unb64(parts[6])
    except ValueError:
        return None
    # Refuse parameters that would make one check cost the server minutes or gigabytes.
    if not (2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        return None
    if not salt or len(digest) != HASH_BYTES:
        return None
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored hash (compared in constant time).

    A stored value in no format this version knows never matches.
    """
    parsed = _parse(stored)
    if parsed is None or len(password) > MAX_LENGTH:
        return False
    n, r, p, salt, digest = parsed
    return hmac.compare_digest(_derive(password, salt, n, r, p), digest)


def needs_rehash(stored: str) -> bool:
    """Whether a hash that verified was made with other parameters than today's."""
    parsed = _parse(stored)
    return parsed is None or parsed[:3] != (COST_N, BLOCK_SIZE_R, PARALLELISM_P)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_nothing(password: str) -> bool:
    """Spend the time of a real check, for an account that does not exist; always False.

    Checked when an email is unknown, so a wrong email costs the same time as a wrong
    password and timing does not tell which admin accounts exist.
    """
    verify_password(password, _dummy_hash())
    return False
