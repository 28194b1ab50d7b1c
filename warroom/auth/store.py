"""Users, tokens, sessions, integrations, rate limits and the audit log in the database.

Every function takes an open ``Session`` (the caller owns the transaction) and
the time ``now``; nothing here reads settings or the clock. The API and the
admin CLI are the only callers. The audit log has ``append_audit`` and
queries, and nothing that changes or deletes a row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warroom.auth import crypto
from warroom.models.access import (
    Bucket,
    Caller,
    Role,
    credential_problem,
    lower_of,
    needs_touch,
    password_problem,
    shown_prefix,
    split_token,
    user_id_problem,
)
from warroom.models.tables import (
    ApiTokenRow,
    AuditRow,
    IntegrationRow,
    RateLimitRow,
    UserRow,
    WebSessionRow,
)

INTEGRATION_SOURCES = ("alertmanager", "grafana", "generic", "heartbeat")
"""Alert sources that authenticate with an integration secret (a heartbeat's integration is
named after the heartbeat it may call in for)."""
MAX_TOKEN_LIFETIME = timedelta(days=730)


class AccessError(Exception):
    """A refused administrative request; ``str(err)`` is the reason to show."""


class NotFound(AccessError):
    pass


class Conflict(AccessError):
    pass


class Invalid(AccessError):
    pass


class Unauthenticated(Exception):
    """No valid identity. ``actor`` is the owner of a known but unusable credential, for the audit log."""

    def __init__(self, reason: str, actor: str | None = None, credential: str = "none") -> None:
        super().__init__(reason)
        self.reason, self.actor, self.credential = reason, actor, credential


# --- users -----------------------------------------------------------------------------------


def get_user(session: Session, user_id: str) -> UserRow:
    row = session.get(UserRow, user_id)
    if row is None:
        raise NotFound(f"no user '{user_id[:100]}'")
    return row


def _role(value: str | Role) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise Invalid(f"unknown role '{value}': use one of {', '.join(r.value for r in Role)}") from None


def create_user(
    session: Session, user_id: str, *, name: str, role: Role | str, password: str | None, by: str, now: datetime
) -> UserRow:
    problem = user_id_problem(user_id)
    if problem:
        raise Invalid(problem)
    if password is not None and (problem := password_problem(password)):
        raise Invalid(problem)
    row = UserRow(
        id=user_id, name=(name or user_id).strip()[:200], role=_role(role).value,
        password_hash=crypto.hash_password(password) if password is not None else None,
        created_at=now, created_by=by[:200], password_changed_at=now if password is not None else None,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(f"user '{user_id}' already exists") from None
    return row


def active_admins(session: Session) -> list[str]:
    return list(session.scalars(
        select(UserRow.id).where(UserRow.role == Role.ADMIN.value, UserRow.disabled_at.is_(None))
    ))


def update_user(
    session: Session, user_id: str, *, now: datetime, name: str | None = None, role: Role | str | None = None,
    disabled: bool | None = None, password: str | None = None, keep_session: str | None = None,
) -> UserRow:
    """Change a user. Refuses to leave warroom without an active admin; disabling or a new
    password ends the user's web sessions but ``keep_session`` (tokens stay valid unless revoked or
    the user is disabled: disabled users' tokens are refused)."""
    row = get_user(session, user_id)
    new_role = _role(role) if role is not None else Role(row.role)
    stays_admin = new_role == Role.ADMIN and not (disabled if disabled is not None else row.disabled_at is not None)
    if Role(row.role) == Role.ADMIN and row.disabled_at is None and not stays_admin:
        if active_admins(session) == [row.id]:
            raise Conflict(f"'{user_id}' is the last active admin; make someone else an admin first")
    if password is not None and (problem := password_problem(password)):
        raise Invalid(problem)
    if name is not None:
        row.name = name.strip()[:200] or row.id
    row.role = new_role.value
    if disabled is True and row.disabled_at is None:
        row.disabled_at = now
        end_sessions(session, user_id, now)
    elif disabled is False:
        row.disabled_at = None
    if password is not None:
        row.password_hash = crypto.hash_password(password)
        row.password_changed_at = now
        end_sessions(session, user_id, now, keep=keep_session)
    return row


def list_users(session: Session) -> list[UserRow]:
    return list(session.scalars(select(UserRow).order_by(UserRow.id)))


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(UserRow)) or 0)


def check_login(session: Session, user_id: str, password: str, now: datetime) -> UserRow:
    """The user for a correct user id and password, else Unauthenticated. The caller shows every
    refusal the same way (no telling unknown users apart); the reason is for the audit log."""
    row = session.get(UserRow, user_id.strip().lower()[:100])
    if not crypto.verify_password(password, row.password_hash if row is not None else None):
        if row is None:
            raise Unauthenticated("unknown user", credential="password")
        if row.password_hash is None:
            raise Unauthenticated("this user has no password (API tokens only)", actor=row.id, credential="password")
        raise Unauthenticated("wrong password", actor=row.id, credential="password")
    if row.disabled_at is not None:
        raise Unauthenticated(f"user {row.id} is disabled", actor=row.id, credential="password")
    row.last_login_at = now
    return row


# --- API tokens ---------------------------------------------------------------------------------


def issue_token(
    session: Session, user_id: str, *, name: str, expires_at: datetime, by: str, now: datetime,
    role: Role | str | None = None,
) -> tuple[str, ApiTokenRow]:
    """A new API token for ``user_id``: (the secret, shown once; its row)."""
    user = get_user(session, user_id)
    if expires_at <= now:
        raise Invalid("the expiry must be in the future")
    if expires_at - now > MAX_TOKEN_LIFETIME:
        raise Invalid(f"a token lives at most {MAX_TOKEN_LIFETIME.days} days")
    limit = _role(role) if role is not None else None
    if limit is not None and not Role(user.role).at_least(limit):
        raise Invalid(f"{user.id} is {Role(user.role).article} {user.role}; a token cannot have more rights "
                      f"than its user ({limit.value})")
    issued = crypto.new_token("wr")
    row = ApiTokenRow(
        prefix=issued.prefix, token_hash=issued.hash, user_id=user.id, name=(name or "token").strip()[:200],
        role=limit.value if limit is not None else None, created_at=now, created_by=by[:200], expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return issued.value, row


def find_token(session: Session, shown: str) -> ApiTokenRow:
    """A token by what lists show (``wr_3f9a1c0b7d2e``) or by its bare prefix."""
    prefix = shown.strip().removeprefix("wr_")
    row = session.get(ApiTokenRow, prefix[:12]) if len(prefix) == 12 else None
    if row is None:
        raise NotFound(f"no API token '{shown[:40]}'")
    return row


def list_tokens(session: Session, user_id: str | None = None) -> list[ApiTokenRow]:
    query = select(ApiTokenRow).order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.prefix)
    if user_id:
        query = query.where(ApiTokenRow.user_id == user_id)
    return list(session.scalars(query))


def revoke_token(session: Session, shown: str, *, by: str, now: datetime) -> ApiTokenRow:
    row = find_token(session, shown)
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = now, by[:200]
    return row


def token_status(row: ApiTokenRow | IntegrationRow, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    expires = getattr(row, "expires_at", None)
    if expires is not None and expires <= now:
        return "expired"
    return "active"


def caller_for_token(session: Session, presented: str, now: datetime) -> Caller:
    prefix = split_token(presented, "wr")
    if prefix is None:
        if split_token(presented, "wri") is not None:
            raise Unauthenticated("this is an alert integration's secret, not an API token")
        raise Unauthenticated("the bearer token is not a warroom API token")
    shown = shown_prefix("wr", prefix)
    row = session.get(ApiTokenRow, prefix)
    if row is None or not crypto.same_digest(presented.strip(), row.token_hash):
        raise Unauthenticated("unknown API token", credential=f"token {shown}")
    user = session.get(UserRow, row.user_id)
    assert user is not None  # foreign key
    problem = credential_problem(
        now=now, expires_at=row.expires_at, revoked_at=row.revoked_at, disabled_at=user.disabled_at,
        what=f"API token {shown}", owner=user.id,
    )
    if problem:
        raise Unauthenticated(problem, actor=user.id, credential=f"token {shown}")
    if needs_touch(row.last_used_at, now):
        row.last_used_at = now
    role = lower_of(Role(user.role), Role(row.role) if row.role else None)
    return Caller(user=user.id, name=user.name, role=role, via="token", credential=f"token {shown}")


# --- web sessions -------------------------------------------------------------------------------


def open_session(
    session: Session, user: UserRow, *, now: datetime, lifetime: timedelta, client_ip: str | None,
    user_agent: str | None,
) -> tuple[str, WebSessionRow]:
    """A new web session: (the cookie value, never stored; its row)."""
    value = crypto.new_session_id()
    row = WebSessionRow(
        id_hash=crypto.digest(value), user_id=user.id, csrf_token=crypto.new_csrf_token(), created_at=now,
        expires_at=now + lifetime, last_seen_at=now, client_ip=(client_ip or "")[:64] or None,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(row)
    session.flush()
    return value, row


def caller_for_session(session: Session, cookie: str, now: datetime) -> Caller:
    row = session.get(WebSessionRow, crypto.digest(cookie)) if cookie else None
    if row is None:
        raise Unauthenticated("the sign-in is not valid (signed out elsewhere?); sign in again", credential="session")
    label = f"session {row.id_hash[:8]}"
    user = session.get(UserRow, row.user_id)
    assert user is not None
    if row.ended_at is not None:
        raise Unauthenticated("this sign-in has ended; sign in again", actor=user.id, credential=label)
    problem = credential_problem(
        now=now, expires_at=row.expires_at, revoked_at=None, disabled_at=user.disabled_at, what="the sign-in",
        owner=user.id,
    )
    if problem:
        raise Unauthenticated(f"{problem}; sign in again", actor=user.id, credential=label)
    if needs_touch(row.last_seen_at, now):
        row.last_seen_at = now
    return Caller(user=user.id, name=user.name, role=Role(user.role), via="session", credential=label,
                  csrf=row.csrf_token, session_id=row.id_hash)


def end_session(session: Session, id_hash: str, now: datetime) -> None:
    session.execute(
        update(WebSessionRow).where(WebSessionRow.id_hash == id_hash, WebSessionRow.ended_at.is_(None))
        .values(ended_at=now)
    )


def end_sessions(session: Session, user_id: str, now: datetime, keep: str | None = None) -> None:
    query = update(WebSessionRow).where(WebSessionRow.user_id == user_id, WebSessionRow.ended_at.is_(None))
    if keep is not None:
        query = query.where(WebSessionRow.id_hash != keep)
    session.execute(query.values(ended_at=now))


# --- alert integrations -------------------------------------------------------------------------


def create_integration(
    session: Session, name: str, *, source: str, by: str, now: datetime
) -> tuple[str, IntegrationRow]:
    if source not in INTEGRATION_SOURCES:
        raise Invalid(f"unknown alert source '{source[:40]}': use one of {', '.join(INTEGRATION_SOURCES)}")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("name the integration (1 to 100 characters), e.g. prod-alertmanager")
    issued = crypto.new_token("wri")
    row = IntegrationRow(name=name, source=source, prefix=issued.prefix, token_hash=issued.hash, created_at=now,
                         created_by=by[:200])
    session.add(row)
    session.flush()
    return issued.value, row


def list_integrations(session: Session) -> list[IntegrationRow]:
    return list(session.scalars(select(IntegrationRow).order_by(IntegrationRow.id)))


def revoke_integration(session: Session, integration_id: int, *, by: str, now: datetime) -> IntegrationRow:
    row = session.get(IntegrationRow, integration_id)
    if row is None:
        raise NotFound(f"no integration {integration_id}")
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = now, by[:200]
    return row


def integration_for(session: Session, presented: str, source: str, now: datetime) -> IntegrationRow:
    prefix = split_token(presented, "wri")
    if prefix is None:
        if split_token(presented, "wr") is not None:
            raise Unauthenticated("a user's API token cannot deliver alerts; use the integration's secret")
        raise Unauthenticated("not an integration secret")
    label = shown_prefix("wri", prefix)
    row = session.scalar(select(IntegrationRow).where(IntegrationRow.prefix == prefix))
    if row is None or not crypto.same_digest(presented.strip(), row.token_hash):
        raise Unauthenticated("unknown integration secret", credential=f"integration {label}")
    label = f"integration {row.id} ({row.name})"
    if row.revoked_at is not None:
        raise Unauthenticated(f"the secret of integration '{row.name}' was revoked", credential=label)
    if row.source != source:
        raise Unauthenticated(f"integration '{row.name}' delivers {row.source} alerts, not {source}", credential=label)
    if needs_touch(row.last_used_at, now):
        row.last_used_at = now
    return row


# --- rate limits -----------------------------------------------------------------------------------


def take(session: Session, key: str, bucket: Bucket, now: float) -> int:
    """Take one request from the bucket ``key``: 0 if allowed, else the seconds to wait.

    One UPDATE does the refill and the take, so concurrent requests (other API
    replicas included) cannot both spend the last token.
    """
    key = key[:200]
    refilled = case(
        (RateLimitRow.tokens + (literal(now) - RateLimitRow.updated) * bucket.per_second > bucket.capacity,
         literal(bucket.capacity)),
        else_=RateLimitRow.tokens + (literal(now) - RateLimitRow.updated) * bucket.per_second,
    )
    taken = session.execute(
        update(RateLimitRow)
        .where(and_(RateLimitRow.key == key, refilled >= 1))
        .values(tokens=refilled - 1, updated=literal(now))
    )
    if taken.rowcount:  # type: ignore[attr-defined]
        return 0
    row = session.get(RateLimitRow, key)
    if row is None:
        if bucket.capacity < 1:
            return bucket.retry_after(0)
        try:
            with session.begin_nested():
                session.add(RateLimitRow(key=key, tokens=bucket.capacity - 1, updated=now))
        except IntegrityError:
            return take(session, key, bucket, now)
        # Forget buckets nobody has used for a day (they would be full again anyway).
        session.execute(delete(RateLimitRow).where(RateLimitRow.updated < now - 86400))
        return 0
    return bucket.retry_after(bucket.refill(row.tokens, now - row.updated))


# --- the audit log (append only) ------------------------------------------------------------------

AUDIT_FIELDS = (
    "id", "at", "actor", "role", "credential", "action", "method", "path", "incident_number", "target",
    "accepted", "status_code", "reason", "client_ip", "user_agent", "detail",
)


def append_audit(session: Session, *, at: datetime, action: str, accepted: bool, status_code: int, reason: str = "",
                 actor: str | None = None, role: str | None = None, credential: str = "none", method: str = "",
                 path: str = "", incident_number: int | None = None, target: str | None = None,
                 client_ip: str | None = None, user_agent: str | None = None, detail: str = "") -> AuditRow:
    row = AuditRow(
        at=at, actor=actor[:200] if actor else None, role=role, credential=credential[:200], action=action[:100],
        method=method[:10], path=path[:2000], incident_number=incident_number, target=target[:300] if target else None,
        accepted=accepted, status_code=status_code, reason=reason[:4000], client_ip=(client_ip or "")[:64] or None,
        user_agent=(user_agent or "")[:300] or None, detail=detail[:4000],
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    incident: int | None = None
    accepted: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_page(
    session: Session, f: AuditFilter, *, limit: int, before: int | None = None, after: int | None = None
) -> list[AuditRow]:
    """Newest first, ``before`` (an id) paging back through older entries; or, given ``after``,
    oldest first from the entry after that id (an export walks forward this way)."""
    if after is not None:
        query = select(AuditRow).where(AuditRow.id > after).order_by(AuditRow.id).limit(limit)
    else:
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditRow.id < before)
    if f.actor is not None:
        query = query.where(AuditRow.actor == f.actor)
    if f.action is not None:
        query = query.where(AuditRow.action == f.action)
    if f.incident is not None:
        query = query.where(AuditRow.incident_number == f.incident)
    if f.accepted is not None:
        query = query.where(AuditRow.accepted.is_(f.accepted))
    if f.since is not None:
        query = query.where(AuditRow.at >= f.since)
    if f.until is not None:
        query = query.where(AuditRow.at < f.until)
    return list(session.scalars(query))


def audit_dict(row: AuditRow) -> dict[str, Any]:
    data = {name: getattr(row, name) for name in AUDIT_FIELDS}
    data["at"] = row.at.isoformat()
    return data


def redact(data: Any, depth: int = 0) -> Any:
    """A request body fit for the audit log: secrets replaced, size bounded."""
    if depth > 6:
        return "..."
    if isinstance(data, dict):
        return {
            str(k)[:100]: "[redacted]" if _secret_key(str(k)) else redact(v, depth + 1)
            for k, v in list(data.items())[:100]
        }
    if isinstance(data, list):
        return [redact(v, depth + 1) for v in data[:50]]
    if isinstance(data, str):
        return data[:500]
    return data


def _secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in ("password", "secret", "token", "csrf"))


def compact(data: Any, limit: int = 4000) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"

