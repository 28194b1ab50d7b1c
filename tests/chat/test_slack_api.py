"""Slack calling warroom: the /warroom command, the buttons and the reaction events,
through the real API, a real worker and a fake Slack Web API.

Every request must be signed with the signing secret and fresh; the Slack user
acts as the warroom person mapped to them, with that person's rights, through
the same workflow updates as the API, and each request lands in the audit log.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from tests.access import ensure_user
from tests.api.support import Api, eventually, serving
from tests.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from warroom.models.access import Role
from warroom.models.chat import slack_signature
from warroom.models.tables import AuditRow, ChatChannelRow

USERS = {"erin": "U0ERIN", "bob": "U0BOB", "vic": "U0VIC"}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    fake.url = fake.start()  # type: ignore[attr-defined]
    yield fake
    fake.stop()


@pytest.fixture
async def api(client: Client, engine: Engine, tmp_path: Path, slack: FakeSlack) -> AsyncIterator[Api]:
    async with serving(
        client, engine, tmp_path,
        slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
        slack_api_base=slack.url, slack_users=USERS,  # type: ignore[attr-defined]
    ) as a:
        ensure_user(engine, "vic", Role.VIEWER)
        ensure_user(engine, "erin")  # a responder (tests.access)
        yield a


def signed(body: bytes, *, secret: str = SIGNING_SECRET, at: float | None = None,
           kind: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    ts = str(int(at if at is not None else time.time()))
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack_signature(secret, ts, body),
            "Content-Type": kind}


def command(text: str, user: str, channel: str) -> bytes:
    # Slack gives every invocation its own trigger_id, so no two real requests are the same.
    return urlencode({"command": "/warroom", "text": text, "user_id": user, "channel_id": channel,
                      "team_id": "T0001", "response_url": "", "trigger_id": uuid.uuid4().hex}).encode()


async def slash(api: Api, text: str, user: str, channel: str) -> dict[str, Any]:
    body = command(text, user, channel)
    resp = await api.anonymous.post("/api/slack/commands", content=body, headers=signed(body))
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def channel_of(api: Api, number: int) -> str:
    def load() -> str | None:
        with Session(api.engine) as session:
            row = session.get(ChatChannelRow, number)
            return row.channel_id if row is not None else None

    async def probe() -> str | None:
        return load()

    return await eventually("the incident's channel", probe, timeout=15)


def audit(api: Api, action: str) -> list[AuditRow]:
    with Session(api.engine) as session:
        return list(session.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id)))


async def test_slash_commands_act_as_the_mapped_person_with_their_rights(api: Api, slack: FakeSlack) -> None:
    inc = await api.declare(title="Mail delivery stalled", severity="SEV-2")
    number = inc["id"]
    channel = await channel_of(api, number)

    answer = await slash(api, "ack", "U0NOBODY", channel)
    assert "not linked to a warroom person" in answer["text"]
    answer = await slash(api, "ack", "U0VIC", channel)
    assert "vic is a viewer; this needs a responder" in answer["text"]
    assert (await api.incident(number))["status"] == "triggered"
    refused = audit(api, "slash_command")
    assert [(r.accepted, r.actor, r.credential) for r in refused] == [
        (False, "slack:U0NOBODY", "slack user U0NOBODY"), (False, "vic", "slack user U0VIC")]

    answer = await slash(api, "ack", "U0ERIN", channel)
    assert answer["text"] == f"Done: #{number} acknowledged by erin."
    body = await api.incident(number)
    assert (body["status"], body["acknowledged_by"]) == ("acknowledged", "erin")
    last = audit(api, "slash_command")[-1]
    assert (last.accepted, last.actor, last.incident_number) == (True, "erin", number)

    await slash(api, "sev 1", "U0ERIN", channel)
    await slash(api, "role ic <@U0BOB|bob>", "U0ERIN", channel)
    answer = await slash(api, "role scribe zoe", "U0ERIN", channel)  # nobody called zoe: refused for good
    assert answer["text"].startswith("Not done: 'zoe' is not a known person"), answer
    assert "Try again" not in answer["text"]
    await slash(api, "status Mail is flowing again for most customers", "U0ERIN", channel)
    await slash(api, "note queue drained at 02:40", "U0ERIN", channel)
    body = await api.incident(number)
    assert body["severity"] == "SEV-1"
    assert body["roles"] == {"incident_commander": "bob"}
    assert body["status_updates"][-1]["message"] == "Mail is flowing again for most customers"
    assert any(e["kind"] == "note" and "queue drained at 02:40" in e["text"] for e in body["timeline"])

    ch = slack.channels[channel]
    await slack.wait(lambda: "SEV-1" in slack.pinned_text(ch) and "Incident Commander: bob" in slack.pinned_text(ch),
                     what="the pinned message after /warroom sev and /warroom role")

    answer = await slash(api, f"{number} resolve Restarted the stuck mail queue", "U0ERIN", "C-ELSEWHERE")
    assert answer["text"].startswith("Done:")
    answer = await slash(api, "ack", "U0ERIN", channel)
    assert answer["text"].startswith("Not done:") and "already resolved" in answer["text"]
    assert audit(api, "slash_command")[-1].accepted is False


async def test_forged_replayed_and_unsigned_requests_change_nothing(api: Api) -> None:
    inc = await api.declare(title="DNS zone transfer fails", severity="SEV-2")
    channel = await channel_of(api, inc["id"])
    body = command("ack", "U0ERIN", channel)
    attempts = {
        "forged": signed(body, secret="guessed-secret"),
        "replayed": signed(body, at=time.time() - 6 * 60),
        "from the future": signed(body, at=time.time() + 6 * 60),
        "unsigned": {"Content-Type": "application/x-www-form-urlencoded"},
    }
    for what, headers in attempts.items():
        resp = await api.anonymous.post("/api/slack/commands", content=body, headers=headers)
        assert resp.status_code == 403, f"{what}: {resp.text}"
    tampered = signed(body)
    resp = await api.anonymous.post("/api/slack/commands", content=command("resolve x", "U0ERIN", channel),
                                    headers=tampered)
    assert resp.status_code == 403
    assert (await api.incident(inc["id"]))["status"] == "triggered"
    rows = audit(api, "slash_command")
    assert len(rows) == 5 and not any(r.accepted for r in rows)
    assert {r.reason.split(":")[0] for r in rows} >= {"X-Slack-Signature does not match"}


async def test_the_same_signed_request_sent_again_acts_once(api: Api) -> None:
    inc = await api.declare(title="Webmail logins fail", severity="SEV-2")
    number = inc["id"]
    channel = await channel_of(api, number)
    body = command("status Logins are failing for some customers; we are on it", "U0ERIN", channel)
    headers = signed(body)  # captured once, sent twice within its five minutes
    first = await api.anonymous.post("/api/slack/commands", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["text"].startswith("Done:"), first.text
    again = await api.anonymous.post("/api/slack/commands", content=body, headers=headers)
    assert again.status_code == 409 and "already received" in again.json()["detail"]
    updates = [u for u in (await api.incident(number))["status_updates"] if u["kind"] == "update"]
    assert [u["message"] for u in updates] == ["Logins are failing for some customers; we are on it"]
    assert [r.accepted for r in audit(api, "slash_command")] == [True, False]

    payload = {"type": "block_actions", "user": {"id": "U0ERIN"}, "channel": {"id": channel},
               "actions": [{"action_id": "warroom_escalate", "value": str(number)}]}
    press = urlencode({"payload": json.dumps(payload)}).encode()
    headers = signed(press)
    assert (await api.anonymous.post("/api/slack/interactions", content=press, headers=headers)).status_code == 200
    assert (await api.anonymous.post("/api/slack/interactions", content=press, headers=headers)).status_code == 409
    escalations = [e for e in (await api.incident(number))["timeline"] if "at erin's request" in e["text"]]
    assert len(escalations) == 1, escalations


async def test_the_acknowledge_button_and_a_pushpin_reaction(api: Api, slack: FakeSlack) -> None:
    inc = await api.declare(title="Billing exports late", severity="SEV-2")
    number = inc["id"]
    channel = await channel_of(api, number)
    ch = slack.channels[channel]
    await slack.wait(lambda: "Acknowledge" in json.dumps(slack.called("chat.postMessage")[0].params["blocks"]))

    async def press(action: str, user: str = "U0ERIN") -> str:
        payload = {"type": "block_actions", "user": {"id": user}, "channel": {"id": channel},
                   "trigger_id": uuid.uuid4().hex, "actions": [{"action_id": action, "value": str(number)}]}
        body = urlencode({"payload": json.dumps(payload)}).encode()
        resp = await api.anonymous.post("/api/slack/interactions", content=body, headers=signed(body))
        assert resp.status_code == 200, resp.text
        return str(resp.json()["text"])

    assert "not linked" in await press("warroom_ack", "U0NOBODY")
    assert await press("warroom_escalate") == f"Done: #{number} escalated."
    assert await press("warroom_ack") == f"Done: #{number} acknowledged by erin."
    assert "already acknowledged by erin" in await press("warroom_escalate")
    assert [r.accepted for r in audit(api, "interaction")] == [False, True, True, False]
    assert (await api.incident(number))["acknowledged_by"] == "erin"
    await slack.wait(lambda: "Acknowledged by:* erin" in slack.pinned_text(ch), what="the pinned ack")

    ts = "1899999999.000200"
    ch.messages[ts] = "The export job was pinned to the old replica"
    event = {"type": "event_callback", "event": {"type": "reaction_added", "user": "U0ERIN", "reaction": "pushpin",
                                                "item": {"type": "message", "channel": channel, "ts": ts}}}
    raw = json.dumps(event).encode()
    for _ in range(2):  # Slack redelivers an event it thinks was lost: noted once
        resp = await api.anonymous.post("/api/slack/events", content=raw,
                                        headers=signed(raw, kind="application/json"))
        assert resp.status_code == 200, resp.text
    notes = [e for e in (await api.incident(number))["timeline"] if e["kind"] == "note"]
    assert len(notes) == 1
    assert notes[0]["text"] == "Note from erin via Slack reaction: The export job was pinned to the old replica"

    check = json.dumps({"type": "url_verification", "challenge": "abc123"}).encode()
    resp = await api.anonymous.post("/api/slack/events", content=check, headers=signed(check, kind="application/json"))
    assert resp.json() == {"challenge": "abc123"}


async def test_slack_requests_are_refused_while_slack_is_not_configured(
    client: Client, engine: Engine, tmp_path: Path
) -> None:
    async with serving(client, engine, tmp_path) as api:
        body = command("ack", "U0ERIN", "C1")
        resp = await api.anonymous.post("/api/slack/commands", content=body, headers=signed(body))
        assert resp.status_code == 403 and "configure WARROOM_SLACK_BOT_TOKEN" in resp.json()["detail"]
        inc = await api.declare(title="Nothing mirrored", severity="SEV-3")
        assert (await api.incident(inc["id"]))["timeline"][0]["kind"] == "declared"
