"""The send activity on a real database and the real Twilio SDK against the fake:
one delivery per key, the last-moment "still wanted?" check, and the per-contact
cap that holds and bundles pages."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError

from tests.fakes import FakeTwilio
from tests.paging.conftest import provider_settings
from warroom.activities.incident import IncidentActivities
from warroom.models.incident import NotificationKind, NotificationRequest
from warroom.models.policy import Person
from warroom.models.tables import ContactSlot, NotificationRow
from warroom.worker import build_notifiers

ALICE = Person(name="Alice Ng", sms="+15005550006", email="alice@example.com")


class Guard:
    """Says which page keys are still wanted; records what it was asked."""

    def __init__(self) -> None:
        self.unwanted: set[str] = set()
        self.asked: list[str] = []

    async def wanted(self, workflow_id: str, key: str) -> bool:
        self.asked.append(key)
        return key not in self.unwanted


def page(number: int, cap: float = 0, kind: NotificationKind = NotificationKind.PAGE) -> NotificationRequest:
    return NotificationRequest(
        key=f"incident-{number}/step-0/alice/0-sms",
        incident_number=number,
        person_id="alice",
        person=ALICE,
        channel="sms",
        kind=kind,
        subject=f"[SEV-2] #{number} Mail slow",
        text=f"warroom #{number} SEV-2: Mail slow. Reply 'ack {number}' to take it.",
        step=0,
        page_cap_seconds=cap,
    )


@pytest.fixture
def guard() -> Guard:
    return Guard()


@pytest.fixture
def acts(engine, tmp_path, fake_twilio, fake_sendgrid, guard) -> IncidentActivities:
    notifiers = build_notifiers(provider_settings(tmp_path, fake_twilio, fake_sendgrid))
    return IncidentActivities(engine, notifiers, guard=guard, poll_seconds=0.05)


def row(engine, key: str) -> NotificationRow:
    with Session(engine) as session:
        found = session.get(NotificationRow, key)
        assert found is not None
        session.expunge(found)
        return found


def test_the_fake_fails_a_test_that_leaves_a_message_unclaimed():
    fake = FakeTwilio()
    fake.start()
    try:
        fake._record(__import__("tests.fakes", fromlist=["Recorded"]).Recorded("sms", "+1", {"Body": "x"}, 201))
        with pytest.raises(AssertionError, match="no test expected"):
            fake.assert_all_claimed()
    finally:
        fake.stop()


async def test_the_same_key_sends_once(acts, engine, fake_twilio):
    first = await acts.send_notification(page(1))
    again = await acts.send_notification(page(1))
    assert (first.status, again.status) == ("sent", "duplicate")
    sms = await fake_twilio.expect("sms", to=ALICE.sms, contains="#1")
    assert row(engine, page(1).key).provider_id == sms.sid
    await fake_twilio.expect_nothing(0.2)


async def test_an_attempt_that_died_mid_send_is_never_sent_again(acts, engine, fake_twilio):
    # A worker crashed after claiming the key: the provider may or may not have it.
    await acts.send_notification(page(1))
    await fake_twilio.expect("sms")
    with Session(engine) as session, session.begin():
        session.get(NotificationRow, page(1).key).status = "sending"
    result = await acts.send_notification(page(1))
    assert result.status == "unconfirmed"
    assert row(engine, page(1).key).status == "unconfirmed"
    await fake_twilio.expect_nothing(0.2)


class SlowGuard(Guard):
    """An incident that answers "still wanted?" only when the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = asyncio.Event()

    async def wanted(self, workflow_id: str, key: str) -> bool:
        self.asked.append(key)
        await self.answer.wait()
        return True


@pytest.fixture
def slow_guard() -> SlowGuard:
    return SlowGuard()


@pytest.fixture
def slow_acts(engine, tmp_path, fake_twilio, fake_sendgrid, slow_guard) -> IncidentActivities:
    notifiers = build_notifiers(provider_settings(tmp_path, fake_twilio, fake_sendgrid))
    return IncidentActivities(engine, notifiers, guard=slow_guard, poll_seconds=0.05)


async def test_an_attempt_that_stopped_before_the_provider_is_sent_by_the_retry(
    slow_acts, slow_guard, engine, fake_twilio
):
    # The first attempt outlives its timeout while the incident is slow to answer
    # (an overloaded worker): nothing reached the provider, so the retry must send,
    # not report "unconfirmed" and move on to another method.
    acts, guard = slow_acts, slow_guard
    first = asyncio.ensure_future(acts.send_notification(page(1)))
    while not guard.asked:
        await asyncio.sleep(0.01)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert row(engine, page(1).key).status == "queued"
    guard.answer.set()
    assert (await acts.send_notification(page(1))).status == "sent"
    await fake_twilio.expect("sms", to=ALICE.sms, contains="#1")
    await fake_twilio.expect_nothing(0.2)


async def test_a_timed_out_attempt_still_running_beside_its_retry_does_not_send_twice(
    slow_acts, slow_guard, engine, fake_twilio
):
    acts, guard = slow_acts, slow_guard
    stale = asyncio.ensure_future(acts.send_notification(page(1)))
    retry = asyncio.ensure_future(acts.send_notification(page(1)))
    while len(guard.asked) < 2:
        await asyncio.sleep(0.01)
    guard.answer.set()  # both hear "still wanted" at once; only one may talk to Twilio
    results = sorted(r.status for r in await asyncio.gather(stale, retry))
    assert results == ["duplicate", "sent"], results  # the loser waits for the winner and says so
    await fake_twilio.expect("sms", to=ALICE.sms, contains="#1")
    await fake_twilio.expect_nothing(0.3)
    assert row(engine, page(1).key).status == "sent"


async def test_a_transient_failure_is_retried_and_then_sends_once(acts, engine, fake_twilio):
    fake_twilio.fail("sms", 500)
    with pytest.raises(Exception, match="500"):
        await acts.send_notification(page(1))
    assert row(engine, page(1).key).status == "retrying"
    assert (await acts.send_notification(page(1))).status == "sent"
    await fake_twilio.expect("sms", answered=500)
    await fake_twilio.expect("sms", answered=201)


async def test_a_permanent_failure_is_not_retried_and_is_recorded(acts, engine, fake_twilio):
    fake_twilio.fail("sms", 400, code=21211, message="The 'To' number is not a valid phone number.")
    with pytest.raises(ApplicationError) as caught:
        await acts.send_notification(page(1))
    assert caught.value.type == "PermanentDeliveryError" and caught.value.non_retryable
    stored = row(engine, page(1).key)
    assert stored.status == "failed" and "21211" in stored.detail
    await fake_twilio.expect("sms", answered=400)


async def test_a_page_the_incident_no_longer_wants_is_withdrawn_unsent(acts, engine, guard, fake_twilio):
    guard.unwanted.add(page(1).key)
    result = await acts.send_notification(page(1))
    assert result.status == "withdrawn"
    assert row(engine, page(1).key).status == "withdrawn"
    await fake_twilio.expect_nothing(0.2)


async def test_reminders_do_not_ask_whether_they_are_wanted(acts, guard, fake_twilio):
    await acts.send_notification(page(1, kind=NotificationKind.REMINDER))
    assert guard.asked == []
    await fake_twilio.expect("sms")


async def test_the_cap_holds_later_pages_and_sends_them_together_in_one_message(acts, engine, fake_twilio):
    cap = 1.0
    first = await acts.send_notification(page(1, cap))
    assert first.held_seconds == 0
    await fake_twilio.expect("sms", contains="#1")
    started = time.monotonic()
    second, third = await asyncio.gather(
        acts.send_notification(page(2, cap)), acts.send_notification(page(3, cap))
    )
    waited = time.monotonic() - started
    assert 0.7 <= waited < 2.5
    bundle = await fake_twilio.expect("sms", to=ALICE.sms)
    assert "2 incidents need you" in bundle.text and "#2" in bundle.text and "#3" in bundle.text
    assert (second.status, third.status) == ("sent", "sent")
    assert second.bundled_with == [3] and third.bundled_with == [2]
    assert second.held_seconds >= 0.7 and third.held_seconds >= 0.7
    for n in (2, 3):
        stored = row(engine, page(n, cap).key)
        assert stored.provider_id == bundle.sid
        assert "held" in stored.detail and "one message for #2, #3" in stored.detail
    await fake_twilio.expect_nothing(0.2)


async def test_a_held_page_that_is_no_longer_wanted_never_goes_out(acts, engine, guard, fake_twilio):
    cap = 1.0
    await acts.send_notification(page(1, cap))
    await fake_twilio.expect("sms", contains="#1")
    held = asyncio.ensure_future(acts.send_notification(page(2, cap)))
    await asyncio.sleep(0.3)
    stored = row(engine, page(2, cap).key)
    assert stored.status == "queued" and "held until" in stored.detail and "per-contact cap" in stored.detail
    guard.unwanted.add(page(2, cap).key)  # acknowledged while held
    assert (await held).status == "withdrawn"
    assert row(engine, page(2, cap).key).status == "withdrawn"
    await fake_twilio.expect_nothing(0.3)


async def test_cancelling_a_held_page_withdraws_it(acts, engine, fake_twilio):
    cap = 5.0
    await acts.send_notification(page(1, cap))
    await fake_twilio.expect("sms")
    held = asyncio.ensure_future(acts.send_notification(page(2, cap)))
    await asyncio.sleep(0.2)
    held.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
    assert row(engine, page(2, cap).key).status == "withdrawn"


async def test_a_send_that_failed_does_not_use_up_the_contact_s_turn(acts, engine, fake_twilio):
    cap = 30.0
    fake_twilio.fail("sms", 500)
    with pytest.raises(Exception, match="500"):
        await acts.send_notification(page(1, cap))
    await fake_twilio.expect("sms", answered=500)
    with Session(engine) as session:
        assert session.get(ContactSlot, row(engine, page(1, cap).key).contact_ref) is None
    # Nothing reached the phone, so another incident's page right after is not held for 30 s.
    result = await asyncio.wait_for(acts.send_notification(page(2, cap)), 3)
    assert (result.status, result.held_seconds) == ("sent", 0)
    await fake_twilio.expect("sms", contains="#2", answered=201)


async def test_the_cap_is_per_contact_and_method(acts, fake_twilio, fake_sendgrid):
    cap = 30.0
    await acts.send_notification(page(1, cap))
    email = page(2, cap).model_copy(update={"channel": "email", "key": "incident-2/step-0/alice/0-email"})
    bob = page(3, cap).model_copy(update={
        "person_id": "bob", "person": Person(name="Bob", sms="+15005550007"), "key": "incident-3/step-0/bob/0-sms"
    })
    assert (await asyncio.wait_for(acts.send_notification(email), 3)).held_seconds == 0
    assert (await asyncio.wait_for(acts.send_notification(bob), 3)).held_seconds == 0
    await fake_twilio.expect("sms", to=ALICE.sms)
    await fake_twilio.expect("sms", to="+15005550007")
    await fake_sendgrid.expect("email", to=ALICE.email)
