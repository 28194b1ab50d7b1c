"""The audit log: every command, accepted or refused, with who, what, where from and why;
readable and exportable by admins only; never changed."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tests.access import client_as, token_for
from tests.api.support import Api, firing_sample
from warroom.models.access import Role
from warroom.models.tables import AuditRow


async def audit(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await api.http.get("/api/audit", params=params)
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_accepted_and_refused_commands_are_recorded_with_who_what_where_and_why(api: Api) -> None:
    inc = await api.declare(title="Webmail logins fail")
    n = inc["id"]
    ua = {"User-Agent": "incident-bot/2.1"}
    accepted = await api.http.post(f"/api/incidents/{n}/acknowledge", json={}, headers=ua)
    assert accepted.status_code == 200, accepted.text
    bob = await api.as_("bob")
    lifecycle = await bob.post(f"/api/incidents/{n}/acknowledge", json={})  # 409: already acknowledged
    impersonation = await bob.post(f"/api/incidents/{n}/resolve", json={"summary": "Fixed.", "by": "alice"})
    async with client_as(api.transport, token_for(api.engine, "vic", Role.VIEWER)) as vic:
        too_low = await vic.post(f"/api/incidents/{n}/resolve", json={"summary": "Fixed."})
    nobody = await api.anonymous.post(f"/api/incidents/{n}/resolve", json={"summary": "Fixed."})
    assert [r.status_code for r in (lifecycle, impersonation, too_low, nobody)] == [409, 403, 403, 401]

    entries = list(reversed(await audit(api, incident_id=n)))  # oldest first
    got = [(e["action"], e["actor"], e["accepted"], e["status_code"]) for e in entries]
    assert got == [
        ("declare", "alice", True, 201),
        ("acknowledge", "alice", True, 200),
        ("acknowledge", "bob", False, 409),
        ("resolve", "bob", False, 403),
        ("resolve", "vic", False, 403),
        ("resolve", None, False, 401),
    ]
    ack, refused_ack, impersonated, low, anonymous = entries[1:]
    assert ack["reason"] == f"#{n} acknowledged by alice"
    assert ack["role"] == "admin" and ack["credential"].startswith("token wr_")
    assert ack["user_agent"] == "incident-bot/2.1" and ack["client_ip"] == "127.0.0.1"
    assert ack["method"] == "POST" and ack["path"] == f"/api/incidents/{n}/acknowledge"
    assert "already acknowledged by alice" in refused_ack["reason"]
    assert "you are bob" in impersonated["reason"] and json.loads(impersonated["detail"])["by"] == "alice"
    assert "vic is a viewer; this needs the responder role" in low["reason"]
    assert "no credentials" in anonymous["reason"] and anonymous["credential"] == "none"

    assert [e["actor"] for e in await audit(api, incident_id=n, accepted="false", actor="bob")] == ["bob", "bob"]
    page = await audit(api, incident_id=n, limit=2)
    older = await audit(api, incident_id=n, limit=10, before=page[-1]["id"])
    assert [e["id"] for e in page + older] == [e["id"] for e in reversed(entries)]


async def test_alert_deliveries_and_configuration_changes_are_recorded_without_secrets(api: Api) -> None:
    assert (await api.alertmanager(firing_sample())).status_code == 200
    stranger = await api.anonymous.post("/api/webhooks/alertmanager/wri_000000000000_" + "x" * 43,
                                        json=firing_sample())
    assert stranger.status_code == 401
    made = await api.http.post("/api/admin/users", json={"id": "dora", "role": "responder",
                                                         "password": "a long enough password"})
    token = await api.http.post("/api/admin/tokens", json={"user": "dora", "name": "laptop"})
    assert made.status_code == 201 and token.status_code == 201

    entries = {e["action"]: e for e in await audit(api)}
    delivery = entries["alertmanager_with_secret"]
    assert delivery["accepted"] and delivery["actor"] == "integration:test-alertmanager"
    assert delivery["incident_id"] is not None and delivery["reason"] == "declared"
    refused = [e for e in await audit(api, accepted="false") if e["action"] == "alertmanager_with_secret"]
    assert refused and refused[0]["reason"] == "unknown integration secret"
    everything = json.dumps(await audit(api))
    assert api.alert_secret not in everything and "wri_000000000000_xxx" not in everything
    assert "a long enough password" not in everything and token.json()["token"] not in everything
    assert json.loads(entries["create_user"]["detail"])["password"] == "[redacted]"
    assert entries["create_token"]["accepted"] and entries["create_token"]["actor"] == "alice"


async def test_only_admins_read_and_export_and_the_export_has_every_entry(api: Api) -> None:
    await api.declare(title="Billing exports fail")
    bob = await api.as_("bob")
    assert (await bob.get("/api/audit")).status_code == 403
    assert (await bob.get("/api/audit/export")).status_code == 403
    assert (await api.anonymous.get("/api/audit")).status_code == 401

    entries = await audit(api)
    lines = await api.http.get("/api/audit/export", params={"format": "jsonl"})
    assert lines.status_code == 200 and lines.headers["content-type"] == "application/x-ndjson"
    assert "attachment" in lines.headers["content-disposition"]
    exported = [json.loads(line) for line in lines.text.splitlines()]
    assert [e["id"] for e in exported] == sorted(e["id"] for e in entries)
    table = await api.http.get("/api/audit/export", params={"format": "csv", "action": "declare"})
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [r["action"] for r in rows] == ["declare"] and rows[0]["actor"] == "alice"
    assert (await api.http.get("/api/audit/export", params={"format": "xml"})).status_code == 422
    assert (await api.http.get("/api/audit", params={"since": "2026-01-01T00:00:00"})).status_code == 422


async def test_the_audit_log_cannot_be_changed(api: Api) -> None:
    """No route changes it, the ORM refuses to, and so does the database itself."""
    await api.declare(title="DNS slow")
    for method in ("PUT", "PATCH", "DELETE"):
        assert (await api.http.request(method, "/api/audit")).status_code == 405
    with Session(api.engine) as session:
        row = session.query(AuditRow).first()
        assert row is not None
        row.reason = "nothing happened"
        with pytest.raises(ValueError, match="append-only"):
            session.flush()
        session.rollback()
        session.delete(session.query(AuditRow).first())
        with pytest.raises(ValueError, match="append-only"):
            session.flush()
    with api.engine.connect() as conn:
        for statement in ("UPDATE audit_log SET accepted = false", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text(statement))
            conn.rollback()


async def test_reads_are_not_audited(api: Api) -> None:
    before = len(await audit(api, limit=1000))
    await api.http.get("/api/incidents")
    await api.http.get("/status")
    assert len(await audit(api, limit=1000)) == before
