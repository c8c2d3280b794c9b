"""Client secrets (argon2 password hashes) and access tokens (opaque, stored as sha256)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# argon2id for a server that checks secrets on requests: OWASP's first choice (19 MiB,
# 2 passes, 1 lane): 19 MiB and a fifth of the time per check, instead of argon2-cffi's
# default (64 MiB, 3 passes, 4 lanes), which took a flood of checks to gigabytes. Fewer
# lanes cost no strength (they only spread the work over cores). Hashes made with other
# parameters still verify (they carry their own) and are re-hashed with these
# after the next successful check.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)

# A hash to verify against when the client id is unknown, so that timing does not tell.
_DUMMY_HASH = _hasher.hash("faxline-no-such-client")


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(secret_hash: str | None, secret: str) -> bool:
    try:
        return _hasher.verify(secret_hash or _DUMMY_HASH, secret) and secret_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(secret_hash: str) -> bool:
    return _hasher.check_needs_rehash(secret_hash)


def new_token() -> str:
    """An opaque token matching `^[A-Za-z0-9_.-]{20,}$` (43 characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
