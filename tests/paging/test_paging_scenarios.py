"""The issue's paging scenarios, end to end: API + worker on the real Temporal dev
server, the real Twilio and SendGrid SDKs against the fakes, signed webhooks.

Every message a fake receives must be claimed by the test (``expect``), so a
page that should not have gone out fails the test at teardown, and
``expect_nothing`` fails it at once."""

from __future__ import annotations

import asyncio
import time

from tests.fakes import call_webhook, status_callback
from tests.paging.conftest import (
    ALICE_EMAIL,
    ALICE_PHONE,
    ALICE_SMS,
    BOB_EMAIL,
    BOB_SMS,
    paging_policy,
    timeline,
)
from tests.workflow.helpers import eventually
from warroom.models.incident import IncidentStatus

VOICE = "/api/webhooks/twilio/voice"
STATUS = "/api/webhooks/twilio/status"


async def test_sms_reply_acknowledges_and_paging_stops(make_stack):
    async with make_stack(paging_policy(ack_timeout="4s")) as stack:
        n = await stack.declare("Mail delivery slow", "SEV-2")
        page = await stack.twilio.expect("sms", to=ALICE_SMS, contains=f"#{n}")
        assert f"Reply 'ack {n}'" in page.text
        answer = await stack.sms(ALICE_SMS, f"ack {n}")
        assert f"<Message>#{n} acknowledged. Thank you.</Message>" in answer.text
        state = await stack.state(n)
        assert (state.status, state.acknowledged_by) == (IncidentStatus.ACKNOWLEDGED, "alice")
        assert "Acknowledged by alice via sms" in timeline(state)
        # Past the 4 s ack deadline: bob is never paged.
        await stack.twilio.expect_nothing(4.5)
        await stack.sendgrid.expect_nothing(0)


async def test_keypress_1_on_the_page_call_acknowledges(make_stack):
    async with make_stack() as stack:
        n = await stack.declare("Control panel returns 502", "SEV-1")
        call = await stack.twilio.expect("call", to=ALICE_PHONE)  # SEV-1: a call and a text at once
        await stack.twilio.expect("sms", to=ALICE_SMS, contains=f"#{n}")
        answered = await stack.twilio_post(VOICE, call_webhook(call.sid, ALICE_PHONE))
        assert answered.status_code == 200
        assert f"Incident {n}, SEV 1: Control panel returns 502" in answered.text
        assert '<Gather action="https://pager.example.test:8443/warroom/api/webhooks/twilio/voice"' in answered.text
        assert 'numDigits="1"' in answered.text and "Press 1 to acknowledge it" in answered.text
        # A wrong key repeats the prompt and changes nothing.
        wrong = await stack.twilio_post(VOICE, call_webhook(call.sid, ALICE_PHONE, digits="7"))
        assert "<Gather" in wrong.text and (await stack.state(n)).acknowledged_by is None
        pressed = await stack.twilio_post(VOICE, call_webhook(call.sid, ALICE_PHONE, digits="1"))
        assert f"Incident {n} acknowledged" in pressed.text and "<Hangup />" in pressed.text
        state = await stack.state(n)
        assert state.acknowledged_by == "alice" and "Acknowledged by alice via voice" in timeline(state)
        # The same key press delivered again acts once.
        again = await stack.twilio_post(VOICE, call_webhook(call.sid, ALICE_PHONE, digits="1"))
        assert again.text == pressed.text
        assert [e.kind for e in (await stack.state(n)).timeline].count("ack") == 1


async def test_keypress_2_escalates_now(make_stack):
    async with make_stack() as stack:
        n = await stack.declare("Control panel returns 502", "SEV-1")
        call = await stack.twilio.expect("call", to=ALICE_PHONE)
        await stack.twilio.expect("sms", to=ALICE_SMS)
        pressed = await stack.twilio_post(VOICE, call_webhook(call.sid, ALICE_PHONE, digits="2"))
        assert f"Incident {n} escalated" in pressed.text
        await stack.twilio.expect("call", to="+15005550017")
        await stack.twilio.expect("sms", to=BOB_SMS, contains=f"#{n}")
        assert "Paged level 2: bob at alice's request" in timeline(await stack.state(n))


async def test_esc_pages_the_next_level_at_once_and_a_second_esc_does_nothing(make_stack):
    async with make_stack(paging_policy(ack_timeout="30s")) as stack:
        n = await stack.declare()
        await stack.twilio.expect("sms", to=ALICE_SMS, contains=f"#{n}")
        started = time.monotonic()
        answer = await stack.sms(ALICE_SMS, f"esc {n}")
        assert f"#{n} escalated" in answer.text
        await stack.twilio.expect("sms", to=BOB_SMS, contains=f"#{n}", within=3)
        assert time.monotonic() - started < 3  # not the 30 s ack deadline
        second = await stack.sms(ALICE_SMS, f"esc {n}")  # a different message, same level
        assert f"#{n} was already escalated past your level" in second.text
        state = await stack.state(n)
        assert state.escalation.step == 1
        assert "Paged level 2: bob at alice's request (escalated by hand)" in timeline(state)
        await stack.twilio.expect_nothing(1.0)


async def test_undelivered_sms_falls_back_to_a_call_long_before_the_deadline(make_stack):
    async with make_stack(paging_policy(ack_timeout="30s")) as stack:
        n = await stack.declare("DNS updates delayed", "SEV-2")  # SEV-2: SMS first
        sms = await stack.twilio.expect("sms", to=ALICE_SMS)
        started = time.monotonic()
        callback = await stack.twilio_post(STATUS, status_callback(sms.sid, "undelivered", "30003"))
        assert callback.status_code == 204
        await stack.twilio.expect("call", to=ALICE_PHONE, within=3)
        assert time.monotonic() - started < 3
        state = await stack.wait_for(n, lambda s: "voice: sent" in timeline(s), what="the call")
        assert "Page to alice by sms failed: undelivered (error 30003); trying voice now" in timeline(state)
        rows = {r.channel: r for r in stack.notifications(n)}
        assert (rows["sms"].status, rows["sms"].detail) == ("undelivered", "undelivered (error 30003)")
        assert rows["voice"].status == "sent"
        # The same callback again does not call twice.
        await stack.twilio_post(STATUS, status_callback(sms.sid, "undelivered", "30003"))
        await stack.twilio.expect_nothing(0.5)


async def test_an_unanswered_call_falls_back_and_a_delivered_text_is_recorded(make_stack):
    async with make_stack() as stack:
        n = await stack.declare("Control panel returns 502", "SEV-1")
        call = await stack.twilio.expect("call", to=ALICE_PHONE)
        sms = await stack.twilio.expect("sms", to=ALICE_SMS)
        await stack.twilio_post(STATUS, status_callback(sms.sid, "delivered"))
        await stack.twilio_post(STATUS, status_callback(call.sid, "no-answer"))
        await stack.sendgrid.expect("email", to=ALICE_EMAIL, within=3)
        state = await stack.wait_for(n, lambda s: "email: sent" in timeline(s), what="the email")
        text = timeline(state)
        assert "Page to alice by sms: delivered" in text
        assert "Page to alice by voice failed: call no-answer; trying email now" in text
        notifications = (await stack.http.get("/api/notifications", params={"incident_id": n})).json()
        assert {(x["channel"], x["status"]) for x in notifications} == {
            ("voice", "no-answer"), ("sms", "delivered"), ("email", "sent")
        }


async def test_twilio_failing_three_times_falls_back_to_email_in_the_timeline(make_stack):
    # Twilio is down: alice's text and then her call (both Twilio) each get a 500
    # three times; the page reaches her by email well before the ack deadline.
    async with make_stack(paging_policy(ack_timeout="60s")) as stack:
        stack.twilio.fail("sms", 500, times=3, message="Internal Server Error")
        stack.twilio.fail("call", 500, times=3, message="Internal Server Error")
        n = await stack.declare()
        for _ in range(3):
            await stack.twilio.expect("sms", to=ALICE_SMS, answered=500)
        for _ in range(3):
            await stack.twilio.expect("call", to=ALICE_PHONE, answered=500, within=6)
        mail = await stack.sendgrid.expect("email", to=ALICE_EMAIL, within=6)
        assert f"#{n}" in mail.text
        state = await stack.wait_for(n, lambda s: "email: sent" in timeline(s), what="the email")
        text = timeline(state)
        assert "Page to alice by sms failed: gave up after 3 tries: Twilio answered 500" in text
        assert "; trying voice now" in text
        assert "Page to alice by voice failed: gave up after 3 tries: Twilio answered 500" in text
        assert "; trying email now" in text
        assert "Page to alice by email: sent via sendgrid" in text
        assert state.escalation.step == 0  # reached: no reason to wake the next level
        await stack.twilio.expect_nothing(0.3)


async def test_every_method_failing_moves_on_to_the_next_level_at_once_and_says_why(make_stack):
    people = {
        "alice": {"name": "Alice Ng", "sms": ALICE_SMS, "email": ALICE_EMAIL},
        "bob": {"name": "Bob Ruiz", "sms": BOB_SMS, "email": BOB_EMAIL},
        "erin": {"name": "Erin Cho", "sms": "+15005550008"},
    }
    async with make_stack(paging_policy(people=people, ack_timeout="30s")) as stack:
        stack.twilio.fail("sms", 400, to=ALICE_SMS, code=21211, message="The 'To' number is not valid")
        stack.sendgrid.fail("email", 400, message="Invalid recipient")
        started = time.monotonic()
        n = await stack.declare()
        await stack.twilio.expect("sms", to=ALICE_SMS, answered=400)
        await stack.sendgrid.expect("email", to=ALICE_EMAIL, answered=400)
        await stack.twilio.expect("sms", to=BOB_SMS, contains=f"#{n}", within=5)
        assert time.monotonic() - started < 5
        text = timeline(await stack.state(n))
        assert "Page to alice by sms failed: Twilio answered 400 (Twilio error 21211)" in text
        assert "alice could not be reached by any method" in text
        assert "Paged level 2: bob (every contact method of alice failed)" in text


async def test_ack_one_second_before_a_held_sms_and_it_never_goes_out(make_stack):
    # alice already got a page a moment ago, so the per-contact cap holds the next
    # one; she acknowledges that incident one second before it would go out.
    async with make_stack(paging_policy(page_cap="4s")) as stack:
        earlier = await stack.declare("DNS slow")
        first = await stack.twilio.expect("sms", to=ALICE_SMS, contains=f"#{earlier}")
        second_declared = time.monotonic()
        n = await stack.declare("Mail slow")
        await stack.wait_for(n, lambda s: bool(s.page_runs), what="the page to be scheduled")
        await asyncio.sleep(max(0.0, 4 - 1 - (time.monotonic() - first.at)))
        held = stack.notifications(n)
        assert held[0].status == "queued" and "held until" in held[0].detail
        answer = await stack.sms(ALICE_SMS, f"ack {n}")
        assert f"#{n} acknowledged" in answer.text
        await stack.twilio.expect_nothing(2.5)  # past the moment it was due: nothing
        state = await stack.state(n)
        assert "Page to alice by sms withdrawn before it went out (acknowledged by alice)" in timeline(state)
        # The timeline comes from the workflow; the notification row is written just after it.
        await eventually(lambda: [r.status for r in stack.notifications(n)] == ["withdrawn"],
                         timeout=5, what="the held page's row to read withdrawn")
        assert time.monotonic() - second_declared > 4


async def test_an_ack_during_a_retry_back_off_stops_the_retry(make_stack):
    async with make_stack() as stack:
        stack.twilio.fail("sms", 503, times=2)
        n = await stack.declare()
        await stack.twilio.expect("sms", to=ALICE_SMS, answered=503)
        # Retries are due 1 s and then 2 s more after the failure; the ack comes first (by API).
        acked = await stack.http.post(f"/api/incidents/{n}/acknowledge", json={"person": "alice"})
        assert acked.status_code == 200
        await asyncio.sleep(4)
        # On a slow machine one retry may have started before the ack (and failed);
        # none may have reached the phone.
        late = stack.twilio.unclaimed()
        assert all(r.answered == 503 for r in late), [str(r) for r in late]
        stack.twilio.claim_all()
        assert stack.notifications(n)[0].status in ("retrying", "withdrawn")
        # Withdrawn in its back-off; or, when the ack found the second attempt in flight,
        # that attempt's 503 is the page's last word. Either way, no third attempt.
        text = timeline(await stack.state(n))
        assert ("Page to alice by sms withdrawn before it went out (acknowledged by alice)" in text
                or "Page to alice by sms failed: Twilio answered 503" in text), text
        assert "sent via" not in text, text


async def test_pages_held_by_the_cap_go_out_together_and_the_delay_shows(make_stack):
    # The cap must outlast declaring the next two (a loaded machine takes over a second).
    async with make_stack(paging_policy(page_cap="4s")) as stack:
        first = await stack.declare("DNS slow")
        await stack.twilio.expect("sms", to=ALICE_SMS, contains=f"#{first}")
        second, third = await stack.declare("Mail slow"), await stack.declare("Billing down")
        bundle = await stack.twilio.expect("sms", to=ALICE_SMS, within=8)
        assert "2 incidents need you" in bundle.text and f"#{second}" in bundle.text and f"#{third}" in bundle.text
        for n, other in ((second, third), (third, second)):
            state = await stack.wait_for(n, lambda s: "sms: sent" in timeline(s), what="the bundled page")
            assert "held" in timeline(state) and f"in one message with #{other}" in timeline(state)
        # One answer takes both.
        answer = await stack.sms(ALICE_SMS, "ack all")
        assert "acknowledged" in answer.text and f"#{second}" in answer.text and f"#{third}" in answer.text


async def test_paging_histories_replay_deterministically(make_stack):
    """Fallback, callbacks, withdrawal and cancellation all replay without a
    non-determinism error (a guard for the paging code in the workflow)."""
    from temporalio.worker import Replayer

    from warroom.models.ids import incident_workflow_id
    from warroom.temporal import DATA_CONVERTER
    from warroom.workflows import WORKFLOWS

    async with make_stack(paging_policy(page_cap="3s")) as stack:
        stack.twilio.fail("sms", 500, times=1)
        first = await stack.declare("DNS slow", "SEV-1")
        call = await stack.twilio.expect("call", to=ALICE_PHONE)
        await stack.twilio.expect("sms", to=ALICE_SMS, answered=500)
        await stack.twilio.expect("sms", to=ALICE_SMS, contains=f"#{first}", within=4)
        await stack.twilio_post(STATUS, status_callback(call.sid, "busy"))
        await stack.sendgrid.expect("email", to=ALICE_EMAIL)
        second = await stack.declare("Mail slow", "SEV-2")
        await stack.wait_for(second, lambda s: bool(s.page_runs), what="the held page")
        await stack.sms(ALICE_SMS, f"ack {second}")
        await stack.sms(ALICE_SMS, f"ack {first}")
        histories = [
            await stack.temporal.get_workflow_handle(incident_workflow_id(n)).fetch_history() for n in (first, second)
        ]
        await stack.twilio.expect_nothing(1.5)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    for history in histories:
        await replayer.replay_workflow(history)
