"""Identities for tests: users, API tokens and integration secrets written straight into the
database (the way ``warroom admin`` does), and clients that carry them.

The policy's people get roles that let each test act as it did before access control:
alice is an admin, bob an operator, erin a responder.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from warroom.auth import store
from warroom.models.access import Role
from warroom.models.tables import UserRow

PEOPLE_ROLES = {"alice": Role.ADMIN, "bob": Role.OPERATOR, "erin": Role.RESPONDER}


def ensure_user(engine: Engine, user: str, role: Role | None = None, password: str | None = None) -> None:
    """Create ``user`` if missing (role: PEOPLE_ROLES, else responder)."""
    with Session(engine) as session, session.begin():
        if session.get(UserRow, user) is None:
            store.create_user(session, user, name=user.title(), role=role or PEOPLE_ROLES.get(user, Role.RESPONDER),
                              password=password, by="tests", now=datetime.now(UTC))


def token_for(engine: Engine, user: str, role: Role | None = None, *, expires_in: timedelta = timedelta(days=1),
              limit: Role | None = None) -> str:
    """A fresh API token of ``user`` (created with ``role`` if new); ``limit`` caps the token's role."""
    ensure_user(engine, user, role)
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        value, _ = store.issue_token(session, user, name="test", role=limit, expires_at=now + expires_in,
                                     by="tests", now=now)
    return value


def expired_token(engine: Engine, user: str, role: Role | None = None) -> str:
    """A token issued two days ago for one day."""
    ensure_user(engine, user, role)
    then = datetime.now(UTC) - timedelta(days=2)
    with Session(engine) as session, session.begin():
        value, _ = store.issue_token(session, user, name="expired", expires_at=then + timedelta(days=1),
                                     by="tests", now=then)
    return value


def revoked_token(engine: Engine, user: str, role: Role | None = None) -> str:
    value = token_for(engine, user, role)
    with Session(engine) as session, session.begin():
        store.revoke_token(session, value.split("_")[1], by="tests", now=datetime.now(UTC))
    return value


def integration_secret(engine: Engine, name: str = "test-alertmanager", source: str = "alertmanager") -> str:
    with Session(engine) as session, session.begin():
        value, _ = store.create_integration(session, name, source=source, by="tests", now=datetime.now(UTC))
    return value


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client_as(transport: httpx.AsyncBaseTransport, token: str | None,
              base_url: str = "http://warroom.test") -> httpx.AsyncClient:
    """An in-process client sending ``token`` (None: no identity)."""
    return httpx.AsyncClient(transport=transport, base_url=base_url, headers=bearer(token) if token else None)
