"""Shared by the status-page API and browser tests: an app on the test worker's
queue, and read-model rows written the way the persist activity writes them.

``make_app`` also makes alice (an admin) and an Alertmanager integration in the
database; ``api(app)`` is a client acting as alice, whose token and the
integration's secret are on ``app.state.test_token`` / ``app.state.test_alert_secret``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from tests.access import bearer, integration_secret, token_for
from warroom.api.app import create_app
from warroom.models.tables import ComponentImpactRow, IncidentRow, StatusUpdateRow
from warroom.settings import Settings

SECRET = "test-secret"  # the same as the test worker's StatusPageActivities
PUBLIC_URL = "http://warroom.test"


def settings_for(tmp_path: Path, task_queue: str = "unused") -> Settings:
    return Settings(
        data_dir=tmp_path, task_queue=task_queue, statuspage_secret=SECRET, public_base_url=PUBLIC_URL,
        command_timeout_seconds=5, twilio_from_number="+15005550001",  # no SID or token: nothing is sent
    )


@asynccontextmanager
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        token = getattr(app.state, "test_token", None)
        async with httpx.AsyncClient(transport=transport, base_url="http://warroom.test",
                                     headers=bearer(token) if token else None) as http:
            yield http


def make_app(tmp_path: Path, engine: Engine, client: Any = None, task_queue: str = "unused",
             clock: Any = None) -> FastAPI:
    kwargs: dict[str, Any] = {"engine": engine}
    if client is not None:
        kwargs["client"] = client
    if clock is not None:
        kwargs["clock"] = clock
    app = create_app(settings_for(tmp_path, task_queue), **kwargs)
    app.state.test_token = token_for(engine, "alice")
    app.state.test_alert_secret = integration_secret(engine)
    return app


def add_incident(
    engine: Engine,
    number: int,
    title: str,
    severity: str,
    declared_at: datetime,
    components: list[str],
    updates: list[tuple[timedelta, str, str] | tuple[timedelta, str, str, str | None]],
    resolved_after: timedelta | None = None,
    impacts: list[tuple[str, str, timedelta, timedelta | None]] = (),  # type: ignore[assignment]
    impact_started_before: timedelta | None = None,
    max_severity: str | None = None,
) -> None:
    """An incident as the persist activity stores it (updates: offset, kind, message and
    optionally the public phase the update set)."""
    resolved_at = declared_at + resolved_after if resolved_after is not None else None
    impact_started_at = declared_at - impact_started_before if impact_started_before is not None else None
    status = "closed" if resolved_at else "acknowledged"
    with Session(engine) as session, session.begin():
        session.execute(insert(IncidentRow).values(
            number=number, title=title, severity=severity, status=status, source="api", components=components,
            declared_at=declared_at, detected_at=declared_at, impact_started_at=impact_started_at, acknowledged_at=None,
            acknowledged_by=None, resolved_at=resolved_at, postmortem_deadline=None, postmortem_submitted_at=None,
            version=1, state={"max_severity": max_severity or severity},
        ))
        for seq, (offset, kind, message, *phase) in enumerate(updates, start=1):
            session.execute(insert(StatusUpdateRow).values(
                incident_number=number, seq=seq, at=declared_at + offset, kind=kind, author="alice", message=message,
                phase=phase[0] if phase else None,
            ))
        for seq, (component, state, start, end) in enumerate(impacts):
            session.execute(insert(ComponentImpactRow).values(
                incident_number=number, seq=seq, component=component, state=state, started_at=declared_at + start,
                ended_at=declared_at + end if end is not None else None, set_by=None,
            ))
