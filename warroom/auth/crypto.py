"""Secrets: password hashes (scrypt, memory-hard, from the standard library) and random tokens.

A password hash is ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (base64), so the cost
can be raised later without breaking stored hashes. Tokens and session ids
carry 256 random bits; they are stored as SHA-256 only (a fast hash is right
for random secrets: there is nothing to guess), and compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from warroom.models.access import shown_prefix

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
"""32 MiB and about a tenth of a second per hash: slow for a guesser, fine for a sign-in."""
_MAXMEM = 128 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; with no stored hash, spends the same time and says no."""
    if not stored:
        hash_password(password)  # as slow as a real check: no telling missing users from wrong passwords
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            maxmem=_MAXMEM, dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_digest(secret: str, stored_hex: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_hex)


@dataclass(frozen=True)
class IssuedSecret:
    value: str
    """The whole secret: shown once, never stored."""
    prefix: str
    """12 hex digits that find the row; shown in lists and the audit log."""
    hash: str

    @property
    def shown(self) -> str:
        return shown_prefix(self.value.split("_", 1)[0], self.prefix)


def new_token(kind: str) -> IssuedSecret:
    """A new ``wr_<prefix>_<secret>`` (API token) or ``wri_<prefix>_<secret>`` (integration secret)."""
    prefix = secrets.token_hex(6)
    value = f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"
    return IssuedSecret(value=value, prefix=prefix, hash=digest(value))


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)
