"""Subscriptions cannot be used to pump SMS or flood someone's inbox: requests per client
address and confirmation messages per address or number are both rate limited, and the
refusal is a readable page with Retry-After.

The Temporal client is a stand-in that records the confirmation workflows started: each
start is one message sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.api.statuspage_helpers import api, settings_for
from warroom.api.app import create_app
from warroom.models.tables import RateLimitRow


class RecordingClient:
    """Stands in for the Temporal client: remembers each confirmation fan-out started."""

    def __init__(self) -> None:
        self.started: list[Any] = []

    async def start_workflow(self, _run: Any, arg: Any, **_kwargs: Any) -> None:
        self.started.append(arg)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def app_with(tmp_path: Path, engine: Engine, client: RecordingClient, clock: Clock | None = None, **overrides: Any) -> Any:
    settings = settings_for(tmp_path).model_copy(update=overrides)
    return create_app(settings, engine=engine, client=client, **({"clock": clock} if clock else {}))


async def test_one_address_cannot_send_a_confirmation_to_many_numbers(engine: Engine, tmp_path: Path) -> None:
    client = RecordingClient()
    app = app_with(tmp_path, engine, client, subscribe_rate_burst=5, subscribe_rate_per_minute=1)
    async with api(app) as http:
        answers = [
            await http.post("/status/subscribe", data={"channel": "sms", "contact": f"+1415555{n:04d}"})
            for n in range(31)
        ]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 26
    assert len(client.started) == 5, "only the burst may send a confirmation"
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["content-type"].startswith("text/html")
    assert "Too many subscription requests came from your address" in refused.text
    assert "+1415555" not in refused.text


async def test_one_number_gets_a_bounded_number_of_confirmations(engine: Engine, tmp_path: Path) -> None:
    client, clock = RecordingClient(), Clock()
    app = app_with(tmp_path, engine, client, clock, subscribe_rate_burst=100,
                   confirmation_rate_burst=3, confirmation_rate_per_hour=2)
    async with api(app) as http:
        answers = []
        for _ in range(6):
            answers.append(await http.post("/status/subscribe", data={"channel": "sms", "contact": "+14155550123"}))
            clock.now += timedelta(seconds=61)  # past the one-minute quiet time that already holds back resends
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429, 429]
        assert len(client.started) == 3
        refused = answers[-1]
        assert int(refused.headers["retry-after"]) > 60
        assert "several confirmation messages to ***0123" in refused.text and "+14155550123" not in refused.text
        # Another number from the same address is not held back by this one's limit ...
        other = await http.post("/status/subscribe", data={"channel": "email", "contact": "kim@example.com"})
        assert other.status_code == 200 and len(client.started) == 4
        # ... and the number gets a confirmation again once the bucket refills (2 an hour).
        clock.now += timedelta(minutes=31)
        again = await http.post("/status/subscribe", data={"channel": "sms", "contact": "+14155550123"})
        assert again.status_code == 200 and len(client.started) == 5
    with Session(engine) as session:
        keys = list(session.scalars(select(RateLimitRow.key)))
    assert keys and not any("4155550123" in k or "kim@" in k for k in keys), keys
