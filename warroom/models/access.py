"""Who may do what: roles, the caller of a request, and the pure rules of access control.

Plain functions and types, no I/O: the API's dependencies, the admin CLI and
the tests all use them. Credentials, hashing and storage are in ``warroom.auth``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Role(StrEnum):
    """viewer < responder < operator < admin; each role may do what the ones below it may."""

    VIEWER = "viewer"
    RESPONDER = "responder"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def at_least(self, required: "Role") -> bool:
        """Whether this role may do what ``required`` may (never compare roles as strings)."""
        return self.rank >= required.rank

    @property
    def article(self) -> str:
        return "an" if self.value[0] in "aeiou" else "a"


_ORDER = [Role.VIEWER, Role.RESPONDER, Role.OPERATOR, Role.ADMIN]

ROLE_DUTIES: dict[Role, str] = {
    Role.VIEWER: "read incidents, timelines, notifications, runbooks and runs, maintenance windows",
    Role.RESPONDER: "declare; acknowledge, escalate, post status updates, assign roles, change severity, resolve, "
    "submit postmortems; run runbooks without destructive steps, confirm manual steps, abort runs",
    Role.OPERATOR: "run runbooks with destructive steps and approve steps; maintenance windows; "
    "component states on the status page",
    Role.ADMIN: "users, API tokens, alert integrations, the audit log",
}
"""What each role adds to the one below it (README and the admin CLI show this)."""


def lower_of(a: Role, b: Role | None) -> Role:
    """The effective role of a credential limited to ``b`` (a read-only token of an admin is a viewer)."""
    if b is None:
        return a
    return a if a.rank <= b.rank else b


@dataclass(frozen=True)
class Caller:
    """The authenticated identity behind a request: the person who acts."""

    user: str
    """The user id; for responders the person id of the policy (``alice``)."""
    name: str
    role: Role
    via: str
    """``token`` or ``session``."""
    credential: str
    """Which credential, for the audit log: ``token wr_3f9a1c0b7d2e`` or ``session 1a2b3c4d``."""
    csrf: str | None = None
    """The session's CSRF token (web pages put it in every form); None for API tokens."""
    session_id: str | None = None


# --- names, passwords, tokens ---------------------------------------------------------------

USER_ID = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,99}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024


def user_id_problem(user_id: str) -> str | None:
    if not USER_ID.fullmatch(user_id):
        return (
            f"'{user_id[:100]}' is not a valid user id: 1 to 100 lowercase letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit (use the person id of the policy, e.g. alice)"
        )
    return None


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"a password has at most {MAX_PASSWORD} characters"
    if not password.strip():
        return "a password cannot be only spaces"
    return None


TOKEN_KINDS = {"wr": "API token", "wri": "integration secret"}
_TOKEN = re.compile(r"^(wri?)_([0-9a-f]{12})_([A-Za-z0-9_-]{40,60})$")


def split_token(presented: str, kind: str) -> str | None:
    """The lookup prefix of a presented token of ``kind`` (``wr`` or ``wri``), or None if it is not one."""
    match = _TOKEN.fullmatch(presented.strip())
    if match is None or match.group(1) != kind:
        return None
    return match.group(2)


def shown_prefix(kind: str, prefix: str) -> str:
    """How a token is named in lists and the audit log: its kind and lookup prefix, never the secret."""
    return f"{kind}_{prefix}"


def credential_problem(
    *, now: datetime, expires_at: datetime | None, revoked_at: datetime | None, disabled_at: datetime | None,
    what: str, owner: str | None = None,
) -> str | None:
    """Why a stored credential no longer identifies anyone, or None if it still does."""
    if revoked_at is not None:
        return f"{what} was revoked at {revoked_at:%Y-%m-%d %H:%M} UTC"
    if expires_at is not None and expires_at <= now:
        return f"{what} expired at {expires_at:%Y-%m-%d %H:%M} UTC"
    if disabled_at is not None:
        return f"user {owner} is disabled" if owner else f"{what} belongs to a disabled user"
    return None


def needs_touch(last: datetime | None, now: datetime, every: timedelta = timedelta(seconds=60)) -> bool:
    """Whether ``last used`` is worth a write: at most once a minute per credential."""
    return last is None or now - last >= every


# --- web pages --------------------------------------------------------------------------------


def safe_next(target: str | None, default: str = "/console") -> str:
    """Where to go after signing in: only a path on this site (never ``//evil.example`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 32 for ch in target):
        return default
    return target


# --- rate limits ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """A token bucket: ``capacity`` requests at once, refilled at ``per_minute``."""

    capacity: float
    per_minute: float

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    def refill(self, tokens: float, elapsed: float) -> float:
        return min(self.capacity, tokens + max(0.0, elapsed) * self.per_second)

    def retry_after(self, tokens: float) -> int:
        """Whole seconds until one request is allowed again, given the tokens left now."""
        if tokens >= 1:
            return 0
        if self.per_second <= 0:
            return 3600
        return max(1, math.ceil((1 - tokens) / self.per_second))
