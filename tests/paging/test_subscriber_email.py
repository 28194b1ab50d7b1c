"""Status-page subscriber email through the real SendGrid SDK and the fake SendGrid:
one-click unsubscribe headers (RFC 2369 and 8058), and links that a worker signs and
the API accepts, though the two keep no files in common."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from temporalio.testing import ActivityEnvironment

from tests.conftest import TestDatabase
from tests.fakes import FakeSendGrid, FakeTwilio
from tests.paging.conftest import PUBLIC_URL, provider_settings
from warroom.activities.statuspage import StatusPageActivities
from warroom.api.app import create_app
from warroom.models.subscribers import DeliveryBatchInput, PublicEvent, PublicEventKind
from warroom.models.tables import SubscriberRow
from warroom.settings import Settings
from warroom.startup import open_read_model
from warroom.statuspage.config import LEGACY_SECRET_FILE, load_config
from warroom.worker import build_notifiers

NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)


def add_subscriber(engine, contact: str, status: str) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as session, session.begin():
        return int(session.execute(insert(SubscriberRow).values(
            channel="email", contact=contact, components=[], status=status, nonce=f"nonce-{contact[:4]}",
            code_attempts=0, created_at=NOW,
        ).returning(SubscriberRow.id)).scalar_one())


def status_of(engine, subscriber_id: int) -> str:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return str(session.scalar(select(SubscriberRow.status).where(SubscriberRow.id == subscriber_id)))


def update_event() -> PublicEvent:
    return PublicEvent(key="incident-42/update-2", kind=PublicEventKind.UPDATE, incident_number=42,
                       title="Mail delivery delayed", components=["email"],
                       message="We have found the cause and are rolling out a fix.", at=NOW)


def local_path(url: str) -> str:
    """The path and query of a link that starts with the public URL (a proxy strips its prefix)."""
    assert url.startswith(PUBLIC_URL + "/"), url
    return url[len(PUBLIC_URL):]


async def test_subscriber_email_offers_one_click_unsubscribe_that_the_api_honours(
    database: TestDatabase, tmp_path: Path, fake_twilio: FakeTwilio, fake_sendgrid: FakeSendGrid
) -> None:
    # A worker and the API as in a cluster: one database, each its own data directory,
    # and no WARROOM_STATUSPAGE_SECRET, so the link secret is the one stored in the database.
    worker_settings = provider_settings(tmp_path / "worker", fake_twilio, fake_sendgrid, database_url=database.url)
    api_settings = Settings(_env_file=None, data_dir=tmp_path / "api", database_url=database.url,
                            public_base_url=PUBLIC_URL)
    assert worker_settings.statuspage_secret is None and api_settings.statuspage_secret is None
    worker_engine = open_read_model(worker_settings)
    database.engines.append(worker_engine)
    cfg = load_config(worker_settings, worker_engine)
    acts = StatusPageActivities(worker_engine, build_notifiers(worker_settings), cfg.catalog, cfg.secret,
                                cfg.public_url, cfg.page_url)
    confirmed = add_subscriber(worker_engine, "ann@example.com", "confirmed")
    other = add_subscriber(worker_engine, "cat@example.com", "confirmed")
    pending = add_subscriber(worker_engine, "ben@example.com", "pending")

    env = ActivityEnvironment()
    await env.run(acts.deliver_to_subscribers,
                  DeliveryBatchInput(event=update_event(), subscriber_ids=[confirmed, other]))
    notice = await fake_sendgrid.expect("email", to="ann@example.com")
    other_notice = await fake_sendgrid.expect("email", to="cat@example.com")
    confirm_event = PublicEvent(key=f"subscriber-{pending}/confirm-1", kind=PublicEventKind.CONFIRM, at=NOW)
    await env.run(acts.deliver_to_subscribers, DeliveryBatchInput(event=confirm_event, subscriber_ids=[pending]))
    confirmation = await fake_sendgrid.expect("email", to="ben@example.com")

    # The update carries both headers; the link is the one in the text.
    headers = notice.params["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith(f"<{PUBLIC_URL}/status/unsubscribe?token=")
    link = headers["List-Unsubscribe"].removeprefix("<").removesuffix(">")
    assert f"Unsubscribe with one click: {link}" in notice.text
    # A confirmation has nothing to unsubscribe from yet.
    assert "List-Unsubscribe" not in confirmation.params["headers"]
    confirm_link = next(w for w in confirmation.text.split() if "/status/subscriptions/confirm?token=" in w)

    app = create_app(api_settings)  # opens its own engine on the same database
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://pager.example.test") as http:
            # The worker's confirmation link is valid here.
            shown = await http.get(local_path(confirm_link))
            assert shown.status_code == 200 and "Confirm subscription" in shown.text
            # What a mail client does for its unsubscribe button (RFC 8058): one POST, no cookie, no page.
            assert status_of(worker_engine, confirmed) == "confirmed"
            gone = await http.post(local_path(link), content=b"List-Unsubscribe=One-Click",
                                   headers={"content-type": "application/x-www-form-urlencoded"})
            assert gone.status_code == 200, gone.text
            assert status_of(worker_engine, confirmed) == "unsubscribed"
            # A token changed in transit is refused, and a second POST changes nothing.
            token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
            forged = await http.post(f"/status/unsubscribe?token={token[:-3]}abc",
                                     content=b"List-Unsubscribe=One-Click",
                                     headers={"content-type": "application/x-www-form-urlencoded"})
            assert forged.status_code == 400
            again = await http.post(local_path(link), content=b"List-Unsubscribe=One-Click",
                                    headers={"content-type": "application/x-www-form-urlencoded"})
            assert again.status_code == 200 and status_of(worker_engine, confirmed) == "unsubscribed"
            # RFC 8058 prefers multipart/form-data for the same POST (Gmail sends that).
            other_link = other_notice.params["headers"]["List-Unsubscribe"].strip("<>")
            assert other_link != link
            multipart = await http.post(local_path(other_link), files={"List-Unsubscribe": (None, "One-Click")})
            assert multipart.request.headers["content-type"].startswith("multipart/form-data")
            assert multipart.status_code == 200 and status_of(worker_engine, other) == "unsubscribed"
    # Nothing of the secret was left in either data directory.
    assert not (tmp_path / "worker" / LEGACY_SECRET_FILE).exists()
    assert not (tmp_path / "api" / LEGACY_SECRET_FILE).exists()
