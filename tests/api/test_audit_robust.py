"""The audit log records every refusal whatever the body held: lone surrogates, NUL
characters, nesting far past the JSON parser's depth, invalid UTF-8. A request refused
before authentication ran is recorded with the caller its token or session names.

The API runs with a Temporal client aimed where nothing listens: every request here is
refused before a workflow would be asked anything."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from tests.access import client_as, expired_token, token_for
from tests.stack import write_policy
from warroom.api.app import create_app
from warroom.models.tables import AuditRow
from warroom.settings import Settings
from warroom.temporal import DATA_CONVERTER

JSON = {"content-type": "application/json"}


@pytest.fixture
async def served(engine: Engine, tmp_path: Path) -> AsyncIterator[httpx.AsyncBaseTransport]:
    client = await Client.connect("127.0.0.1:1", data_converter=DATA_CONVERTER, lazy=True)
    settings = Settings(data_dir=tmp_path, policy=write_policy(tmp_path / "policy.yaml"), command_timeout_seconds=1)
    app = create_app(settings, client=client, engine=engine)
    async with LifespanManager(app) as manager:
        yield httpx.ASGITransport(app=manager.app)


def rows(engine: Engine, action: str) -> list[AuditRow]:
    with Session(engine) as session:
        found = list(session.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id)))
        session.expunge_all()
        return found


async def test_refusals_of_unstorable_or_deeply_nested_bodies_are_recorded(
    served: httpx.AsyncBaseTransport, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    bodies = [
        b'{"title": "\\ud800 down", "severity": "SEV-2"}',  # a lone surrogate: valid JSON, not storable text
        b'{"title": "DNS", "severity": "SEV-2", "summary": "a\\udfffb\\u0000c"}',
        b"[" * 100_000 + b"]" * 100_000,  # far past the JSON parser's recursion
        b'{"title": "ok", "severity": "SEV-2", "components": ' + b"[" * 500 + b"]" * 500 + b"}",
    ]
    with caplog.at_level(logging.ERROR, logger="warroom.api.audit"):
        async with client_as(served, token_for(engine, "alice")) as http:
            answers = [await http.post("/api/incidents", content=body, headers=JSON) for body in bodies]
    assert all(400 <= a.status_code < 500 for a in answers), [(a.status_code, a.text[:100]) for a in answers]
    assert not [r for r in caplog.records if "audit" in r.getMessage()], caplog.text

    recorded = rows(engine, "declare")
    assert [(r.status_code, r.actor, r.accepted) for r in recorded] == [
        (a.status_code, "alice", False) for a in answers
    ]
    surrogate, mixed, deep, nested = recorded
    assert '"title":"\ufffd down"' in surrogate.detail
    assert "\ufffd" in mixed.detail and "\x00" not in mixed.detail
    assert len(deep.detail) <= 4000 and len(nested.detail) <= 4000


async def test_a_body_refused_before_authentication_names_the_caller(
    served: httpx.AsyncBaseTransport, engine: Engine
) -> None:
    not_utf8 = b'{"title": "\xff\xfe broken", "severity": "SEV-2"}'
    async with client_as(served, token_for(engine, "bob")) as bob:
        answer = await bob.post("/api/incidents", content=not_utf8, headers=JSON)
        assert answer.status_code == 400, answer.text
    async with client_as(served, expired_token(engine, "erin")) as erin:
        assert (await erin.post("/api/incidents", content=not_utf8, headers=JSON)).status_code == 400
    async with client_as(served, "wr_000000000000_nonsense") as stranger:
        assert (await stranger.post("/api/incidents", content=not_utf8, headers=JSON)).status_code == 400
    async with client_as(served, None) as anonymous:
        assert (await anonymous.post("/api/incidents", content=not_utf8, headers=JSON)).status_code == 400

    recorded = rows(engine, "declare")
    got: list[tuple[Any, ...]] = [(r.status_code, r.actor, r.role, r.credential.split(" wr_")[0]) for r in recorded]
    assert got == [
        (400, "bob", "operator", "token"),
        (400, "erin", None, "token"),  # known, but the token has expired: named, without a role
        (400, None, None, "none"),
        (400, None, None, "none"),
    ]
    # Public forms are not attributed to a token nobody checked.
    async with client_as(served, token_for(engine, "bob")) as bob:
        await bob.post("/api/reports", content=b'{"text": "\\ud800"}', headers=JSON)
    [report] = rows(engine, "report_api")
    assert report.actor is None and report.status_code == 422


async def test_customer_contacts_never_reach_the_audit_log_in_full(
    served: httpx.AsyncBaseTransport, engine: Engine
) -> None:
    async with client_as(served, None) as anonymous:
        answers = [
            await anonymous.post("/api/reports", json={"text": "Panel down", "contact": "+1 415 555 0123"}),
            await anonymous.post("/api/reports", json={"text": "Call me on +44 20 7946 0000 or pat@example.com",
                                                       "contact": "pat@example.com"}),
            await anonymous.post("/api/reports", json={"text": "x", "contact": "Pat, phone 0044-20-7946-0000"}),
            # rate limited (three a client), still recorded, still masked
            await anonymous.post("/api/reports", json={"text": "still down", "contact": "+14155550123"}),
            # refused by validation (unknown field), recorded with the body
            await anonymous.post("/api/reports", json={"text": "x", "contact": "+14155550123", "extra": 1}),
            await anonymous.post("/status/report", data={"text": "form", "contact": "+14155550123"}),
        ]
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 422, 429]
    with Session(engine) as session:
        recorded = list(session.scalars(select(AuditRow).where(AuditRow.action.in_(["report_api", "report_form"]))))
        assert len(recorded) == 6
        everything = "\n".join(str(getattr(r, c.name)) for r in recorded for c in AuditRow.__table__.columns)
    for full in ("4155550123", "415 555 0123", "7946 0000", "79460000", "7946-0000", "pat@example.com"):
        assert full not in everything, full
    assert "***0123" in everything and "p***@example.com" in everything and "too many problem reports" in everything


async def test_an_incident_id_past_any_incident_number_is_refused_and_still_audited(
    served: httpx.AsyncBaseTransport, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    huge = "99999999999999999999999"
    paths = [f"/api/incidents/{huge}/status-updates", "/api/incidents/9223372036854775808/acknowledge"]
    with caplog.at_level(logging.ERROR, logger="warroom.api.audit"):
        async with client_as(served, token_for(engine, "alice")) as http:
            answers = [await http.post(path, json={"message": "x"}) for path in paths]
    assert [a.status_code for a in answers] == [422, 422], [a.text for a in answers]
    assert not [r for r in caplog.records if "audit" in r.getMessage()], caplog.text
    with Session(engine) as session:
        recorded = list(session.scalars(select(AuditRow).where(AuditRow.path.in_(paths)).order_by(AuditRow.id)))
    assert [(r.path, r.status_code, r.incident_number, r.accepted) for r in recorded] == [
        (path, 422, None, False) for path in paths]
