"""Secrets at rest. Passwords and client secrets: argon2id (slow on purpose, salted). Access and
refresh tokens: SHA-256, which is enough for 380 random bits and lets a token be found by its
hash; the raw token is never stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_ALPHABET = string.ascii_letters + string.digits

# RFC 9106's second recommended profile (argon2-cffi's default): ~0.1-0.3 s per hash here.
DEFAULT_HASHER = PasswordHasher()
# Only for test suites that create many users (hidden CLI option): the parameters travel inside
# each hash, so verification always uses the cost the hash was made with.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def hash_secret(secret: str, fast: bool = False) -> str:
    return (FAST_HASHER if fast else DEFAULT_HASHER).hash(secret)


def verify_secret(hashed: str, secret: str) -> bool:
    try:
        return DEFAULT_HASHER.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False


# A wrong username costs as much as a wrong password, so timing does not reveal which users exist.
@cache
def _dummy_hash() -> str:
    return DEFAULT_HASHER.hash(secrets.token_hex(16))


def burn_verify(secret: str) -> None:
    verify_secret(_dummy_hash(), secret)


def random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
