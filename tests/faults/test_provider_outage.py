"""The SMS provider answers 429, then 500s, for longer than one send activity retries.

An SMS-only person used to be given up on once the activity's retries ran out:
nobody paged them again however long the incident stayed unacknowledged. With
``page_retry_every`` the page goes out again while the incident is unacknowledged,
and reaches them exactly once when the provider recovers. A person with another
method is reached by it at once instead, as the policy orders.
"""

from __future__ import annotations

from tests.paging.conftest import ALICE_EMAIL, ALICE_SMS, BOB_EMAIL, paging_policy, timeline


async def test_sms_only_person_is_paged_once_when_the_provider_recovers(make_stack):
    people = {
        "alice": {"name": "Alice Ng", "sms": ALICE_SMS},
        "bob": {"name": "Bob Ruiz", "email": BOB_EMAIL},
        "erin": {"name": "Erin Cho", "email": "erin@example.com"},
    }
    policy = paging_policy(people=people, ack_timeout="60s", page_retry_every="2s")
    async with make_stack(policy) as stack:
        # One send activity tries three times; the outage lasts five requests.
        stack.twilio.fail("sms", 429, times=1, to=ALICE_SMS, code=20429, message="Too Many Requests")
        stack.twilio.fail("sms", 500, times=4, to=ALICE_SMS, message="Internal Server Error")
        n = await stack.declare()
        await stack.twilio.expect("sms", to=ALICE_SMS, answered=429)
        for _ in range(2):
            await stack.twilio.expect("sms", to=ALICE_SMS, answered=500, within=6)
        # alice is unreachable, so level 2 is paged at once, as before.
        await stack.sendgrid.expect("email", to=BOB_EMAIL, within=5)
        # ...and alice is paged again while nobody acknowledges, until it goes through.
        for _ in range(2):
            await stack.twilio.expect("sms", to=ALICE_SMS, answered=500, within=8)
        delivered = await stack.twilio.expect("sms", to=ALICE_SMS, answered=201, within=8)
        assert f"#{n}" in delivered.text
        state = await stack.wait_for(n, lambda s: "Page to alice by sms: sent" in timeline(s), what="the sent page")
        text = timeline(state)
        assert "alice could not be reached by any method" in text
        assert "Paging alice again: the incident is still unacknowledged" in text
        run = next(r for r in state.page_runs if r.person == "alice")
        assert [a.status for a in run.attempts] == ["failed", "sent"] and run.retry_at is None
        # Delivered once: no retry after the page went through.
        await stack.twilio.expect_nothing(3)


async def test_person_with_email_gets_the_next_channel_and_no_retry(make_stack):
    people = {
        "alice": {"name": "Alice Ng", "sms": ALICE_SMS, "email": ALICE_EMAIL},
        "bob": {"name": "Bob Ruiz", "email": BOB_EMAIL},
        "erin": {"name": "Erin Cho", "email": "erin@example.com"},
    }
    policy = paging_policy(people=people, ack_timeout="60s", page_retry_every="2s")
    async with make_stack(policy) as stack:
        stack.twilio.fail("sms", 429, times=1, to=ALICE_SMS, code=20429, message="Too Many Requests")
        stack.twilio.fail("sms", 500, times=10, to=ALICE_SMS, message="Internal Server Error")
        n = await stack.declare()
        await stack.twilio.expect("sms", to=ALICE_SMS, answered=429)
        for _ in range(2):
            await stack.twilio.expect("sms", to=ALICE_SMS, answered=500, within=6)
        mail = await stack.sendgrid.expect("email", to=ALICE_EMAIL, within=5)
        assert f"#{n}" in mail.text
        state = await stack.wait_for(n, lambda s: "email: sent" in timeline(s), what="the email")
        assert state.escalation.step == 0  # reached: level 2 sleeps on
        assert all(r.retry_at is None for r in state.page_runs)
        await stack.twilio.expect_nothing(3)
        await stack.sendgrid.expect_nothing(0.1)
