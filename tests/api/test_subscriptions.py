"""Subscriptions: double opt-in by email link or SMS code, one-click unsubscribe, and
refusals with reasons. Confirmation messages go out through a real fan-out workflow."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.api.statuspage_helpers import SECRET, api, make_app
from tests.conftest import Harness
from warroom.models.subscribers import UNSUBSCRIBE, sign
from warroom.models.tables import SubscriberRow


def subscriber(engine: Engine, contact: str) -> SubscriberRow:
    with Session(engine) as session:
        row = session.scalar(select(SubscriberRow).where(SubscriberRow.contact == contact))
        assert row is not None
        session.expunge(row)
        return row


async def message_to(harness: Harness, subscriber_id: int, nth: int = 1) -> str:
    """The ``nth`` confirmation message sent to the subscriber (and no more than that many)."""
    for _ in range(100):
        sent = [r for r in harness.channel.sent if r.person_id == f"subscriber-{subscriber_id}"]
        if len(sent) >= nth:
            assert len(sent) == nth
            return sent[nth - 1].text
        await asyncio.sleep(0.1)
    raise AssertionError(f"confirmation message {nth} was not sent")


async def test_email_double_opt_in_and_one_click_unsubscribe(harness: Harness, tmp_path: Path) -> None:
    engine = harness.engine  # the database the worker writes (the primary backend)
    app = make_app(tmp_path, engine, client=harness.client, task_queue=harness.task_queue)
    async with api(app) as http:
        answer = await http.post("/status/subscribe", data={"channel": "email", "contact": " Ann@Example.COM ",
                                                             "components": ["dns", "email"]})
        assert answer.status_code == 200 and "Check your inbox" in answer.text and "a***@example.com" in answer.text
        row = subscriber(engine, "ann@example.com")
        assert row.status == "pending" and row.components == ["dns", "email"]

        text = await message_to(harness, row.id)
        link = re.search(r"http://warroom\.test(/status/subscriptions/confirm\?token=\S+)", text)
        assert link, text
        # Following the link (as a mail scanner would) changes nothing; the button does.
        shown = await http.get(link.group(1))
        assert shown.status_code == 200 and "Confirm subscription" in shown.text
        assert subscriber(engine, "ann@example.com").status == "pending"
        token = link.group(1).split("token=")[1]
        done = await http.post("/status/subscriptions/confirm", data={"token": token})
        assert done.status_code == 200 and "You are subscribed" in done.text
        assert subscriber(engine, "ann@example.com").status == "confirmed"
        tampered = await http.post("/status/subscriptions/confirm", data={"token": token[:-2] + "xx"})
        assert tampered.status_code == 400

        # Subscribing again while confirmed sends nothing and says nothing about who is subscribed.
        again = await http.post("/status/subscribe", data={"channel": "email", "contact": "ann@example.com"})
        assert "If a***@example.com is not subscribed yet" in again.text
        await asyncio.sleep(0.3)
        assert len([r for r in harness.channel.sent if r.person_id == f"subscriber-{row.id}"]) == 1

        # One click: a mail client's RFC 8058 POST to the link in the message.
        unsubscribe = f"/status/unsubscribe?token={sign(SECRET, UNSUBSCRIBE, row.id, row.nonce)}"
        assert "Unsubscribe" in (await http.get(unsubscribe)).text
        assert subscriber(engine, "ann@example.com").status == "confirmed"
        gone = await http.post(unsubscribe, content=b"List-Unsubscribe=One-Click",
                               headers={"content-type": "application/x-www-form-urlencoded"})
        assert gone.status_code == 200 and "Unsubscribed" in gone.text
        assert subscriber(engine, "ann@example.com").status == "unsubscribed"
        forged = await http.post(f"/status/unsubscribe?token={sign('other', UNSUBSCRIBE, row.id, row.nonce)}")
        assert forged.status_code == 400


async def test_sms_double_opt_in_with_a_code_and_a_limit_on_guesses(
    harness: Harness, engine: Engine, tmp_path: Path
) -> None:
    engine = harness.engine  # the database the worker writes (the primary backend)
    app = make_app(tmp_path, engine, client=harness.client, task_queue=harness.task_queue)
    async with api(app) as http:
        form = await http.post("/status/subscribe", data={"channel": "sms", "contact": "+44 20 7946 0000"})
        assert form.status_code == 200 and "***0000" in form.text and "+442079460000" not in form.text
        token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)
        row = subscriber(engine, "+442079460000")
        code = re.search(r"code is (\d{6})", await message_to(harness, row.id)).group(1)
        wrong = "000000" if code != "000000" else "111111"
        miss = await http.post("/status/subscriptions/verify", data={"token": token, "code": wrong})
        assert miss.status_code == 400 and subscriber(engine, "+442079460000").status == "pending"
        ok = await http.post("/status/subscriptions/verify", data={"token": token, "code": code})
        assert ok.status_code == 200 and "You are subscribed" in ok.text
        assert subscriber(engine, "+442079460000").status == "confirmed"

        form = await http.post("/status/subscribe", data={"channel": "sms", "contact": "+14155550100"})
        token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)
        answers = [
            (await http.post("/status/subscriptions/verify", data={"token": token, "code": "99999" + str(n)})).status_code
            for n in range(6)
        ]
        # Five wrong guesses, then locked even for the right code.
        assert answers[-1] == 429 and subscriber(engine, "+14155550100").status == "pending"
        locked = subscriber(engine, "+14155550100")
        # "Subscribe again to get a new code" holds at once, within the minute that reuses a fresh code.
        again = await http.post("/status/subscribe", data={"channel": "sms", "contact": "+14155550100"})
        renewed = subscriber(engine, "+14155550100")
        assert again.status_code == 200 and renewed.nonce != locked.nonce and renewed.code_attempts == 0
        fresh = re.search(r"code is (\d{6})", await message_to(harness, renewed.id, nth=2)).group(1)
        token = re.search(r'name="token" value="([^"]+)"', again.text).group(1)
        ok = await http.post("/status/subscriptions/verify", data={"token": token, "code": fresh})
        assert ok.status_code == 200 and subscriber(engine, "+14155550100").status == "confirmed"


async def test_bad_subscriptions_are_refused_with_the_reason(engine: Engine, tmp_path: Path) -> None:
    async with api(make_app(tmp_path, engine)) as http:
        cases = [
            ({"channel": "email", "contact": "nobody"}, "does not look like an email address"),
            ({"channel": "sms", "contact": "020 7946 0000"}, "international form"),
            ({"channel": "pigeon", "contact": "x"}, "Choose email or text message"),
            ({"channel": "email", "contact": "a@example.com", "components": ["mainframe"]}, "Unknown component: mainframe"),
            ({"channel": "sms", "contact": "+1 500 555 0001"}, "the number this status page texts from"),
        ]
        for data, reason in cases:
            answer = await http.post("/status/subscribe", data=data)
            assert answer.status_code == 422 and reason in answer.text, (data, answer.text[:200])
        assert (await http.get("/status/unsubscribe", params={"token": "1.2.3"})).status_code == 400
