"""Fixtures for the paging tests: fake Twilio and SendGrid servers that fail a test
on any message it did not claim, and settings that point the real SDKs at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_EMAIL,
    FROM_NUMBER,
    SENDGRID_KEY,
    FakeSendGrid,
    FakeTwilio,
)
from warroom.settings import Settings

PUBLIC_URL = "https://pager.example.test:8443/warroom"
"""What Twilio would be configured with: a proxy on a non-standard port, under a path."""


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    fake.base_url = fake.start()  # type: ignore[attr-defined]
    try:
        yield fake
        fake.assert_all_claimed()
    finally:
        fake.stop()


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid()
    fake.base_url = fake.start()  # type: ignore[attr-defined]
    try:
        yield fake
        fake.assert_all_claimed()
    finally:
        fake.stop()


def provider_settings(tmp_path: Path, twilio: FakeTwilio, sendgrid: FakeSendGrid, **extra: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "public_base_url": PUBLIC_URL,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from_number": FROM_NUMBER,
        "twilio_api_base": twilio.base_url,  # type: ignore[attr-defined]
        "sendgrid_api_key": SENDGRID_KEY,
        "sendgrid_from_email": FROM_EMAIL,
        "sendgrid_api_base": sendgrid.base_url,  # type: ignore[attr-defined]
        "provider_timeout_seconds": 2.0,
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


# --- the whole stack: API + worker + real Temporal dev server + fake providers ----------------

import asyncio  # noqa: E402
import itertools  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Callable  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import Engine, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from temporalio.client import Client  # noqa: E402

from tests.access import client_as, token_for  # noqa: E402
from tests.conftest import fast_policy, running_worker, start_incident_numbers_at  # noqa: E402
from tests.fakes import inbound_sms, sign  # noqa: E402
from warroom.api.app import create_app  # noqa: E402
from warroom.models.ids import incident_workflow_id  # noqa: E402
from warroom.models.incident import IncidentState  # noqa: E402
from warroom.models.policy import Policy  # noqa: E402
from warroom.models.tables import NotificationRow  # noqa: E402
from warroom.worker import build_notifiers  # noqa: E402
from warroom.workflows import IncidentWorkflow  # noqa: E402

ALICE_SMS, ALICE_PHONE, ALICE_EMAIL = "+15005550006", "+15005550016", "alice@example.com"
BOB_SMS, BOB_PHONE, BOB_EMAIL = "+15005550007", "+15005550017", "bob@example.com"
ERIN_SMS, ERIN_EMAIL = "+15005550008", "erin@example.com"
STRANGER = "+15005559999"

_numbers = itertools.count(random.randrange(1_000, 900_000) * 1_000, 1_000)


def paging_policy(**overrides: Any) -> Policy:
    """Second-scale escalation; status and role cadences pushed out of the way so the
    fakes see pages only (every message must be claimed by the test)."""
    data: dict[str, Any] = {
        "ack_timeout": "30s",
        "first_status_within": "1h",
        "update_every": {"SEV-1": "1h", "SEV-2": "1h"},
        "reminder_lead": "1m",
        "page_cap": "0s",
        "people": {
            "alice": {"name": "Alice Ng", "sms": ALICE_SMS, "phone": ALICE_PHONE, "email": ALICE_EMAIL},
            "bob": {"name": "Bob Ruiz", "sms": BOB_SMS, "phone": BOB_PHONE, "email": BOB_EMAIL},
            "erin": {"name": "Erin Cho", "sms": ERIN_SMS, "email": ERIN_EMAIL},
        },
        "escalation": {"levels": [{"notify": ["alice"]}, {"notify": ["bob"]}], "repeat": 0, "fallback": ["erin"]},
    }
    data.update(overrides)
    return fast_policy(**data)


@dataclass
class Stack:
    temporal: Client
    engine: Engine
    http: httpx.AsyncClient
    settings: Settings
    twilio: FakeTwilio
    sendgrid: FakeSendGrid

    async def declare(self, title: str = "Mail delivery slow", severity: str = "SEV-2") -> int:
        response = await self.http.post("/api/incidents", json={"title": title, "severity": severity})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def twilio_post(self, path: str, params: dict[str, str], signature: str | None = "sign",
                          url: str | None = None) -> httpx.Response:
        headers = {}
        if signature == "sign":
            headers["X-Twilio-Signature"] = sign(AUTH_TOKEN, url or PUBLIC_URL + path, params)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        return await self.http.post(path, data=params, headers=headers)

    async def sms(self, sender: str, body: str, sid: str | None = None) -> httpx.Response:
        response = await self.twilio_post("/api/webhooks/twilio/sms", inbound_sms(sender, body, sid=sid))
        assert response.status_code == 200, response.text
        return response

    async def state(self, number: int) -> IncidentState:
        handle = self.temporal.get_workflow_handle(incident_workflow_id(number))
        return (await handle.query(IncidentWorkflow.view)).state

    async def wait_for(self, number: int, check: Callable[[IncidentState], bool], within: float = 8.0,
                       what: str = "the condition") -> IncidentState:
        deadline = time.monotonic() + within
        while True:
            state = await self.state(number)
            if check(state):
                return state
            if time.monotonic() > deadline:
                lines = "\n".join(f"  {e.kind}: {e.text}" for e in state.timeline)
                raise AssertionError(f"#{number}: {what} not reached within {within} s; timeline:\n{lines}")
            await asyncio.sleep(0.05)

    def notifications(self, number: int) -> list[NotificationRow]:
        with Session(self.engine) as session:
            rows = list(session.scalars(
                select(NotificationRow).where(NotificationRow.incident_number == number)
                .order_by(NotificationRow.created_at)
            ))
            session.expunge_all()
            return rows


def timeline(state: IncidentState) -> str:
    return "\n".join(f"{e.kind}: {e.text}" for e in state.timeline)


@pytest.fixture
def make_stack(client: Client, engine: Engine, tmp_path: Path, fake_twilio: FakeTwilio, fake_sendgrid: FakeSendGrid):
    @asynccontextmanager
    async def build(policy: Policy | None = None, **settings_overrides: Any) -> AsyncIterator[Stack]:
        policy_file = tmp_path / f"policy-{uuid.uuid4().hex[:6]}.yaml"
        policy_file.write_text(yaml.safe_dump((policy or paging_policy()).model_dump(mode="json")))
        queue = f"paging-{uuid.uuid4().hex[:8]}"
        settings = provider_settings(tmp_path, fake_twilio, fake_sendgrid, policy=policy_file, task_queue=queue,
                                     **settings_overrides)
        start_incident_numbers_at(engine, next(_numbers) + 1)
        app = create_app(settings, client=client, engine=engine)
        async with running_worker(client, engine, queue, notifiers=build_notifiers(settings)), \
                app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            # API calls act as alice (an admin); Twilio's webhooks ignore the token and check signatures.
            async with client_as(transport, token_for(engine, "alice"), "http://127.0.0.1:8000") as http:
                yield Stack(client, engine, http, settings, fake_twilio, fake_sendgrid)

    return build
