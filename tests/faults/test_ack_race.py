"""The ack deadline falls due while alice acknowledges by SMS and by key press at once.

Both webhooks are signed and posted together at the deadline (and around it):
exactly one ack is recorded, the other answer says it was already done, and
level 2 is paged at most once. The API-only race is in
tests/workflow/test_escalation.py; this one goes through Twilio's webhooks.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from tests.fakes import call_webhook, inbound_sms
from tests.paging.conftest import ALICE_PHONE, ALICE_SMS, BOB_SMS, paging_policy
from warroom.models.incident import IncidentStatus

VOICE = "/api/webhooks/twilio/voice"
SMS = "/api/webhooks/twilio/sms"
BOB_PHONE = "+15005550017"


async def _race(stack, offset: float) -> None:
    n = await stack.declare("Control panel returns 502", "SEV-1")
    # Three incidents page alice at once: find this incident's call by its notification row.
    call_sid = None
    for _ in range(200):
        rows = [r for r in stack.notifications(n) if r.channel == "voice" and r.provider_id]
        if rows:
            call_sid = rows[0].provider_id
            break
        await asyncio.sleep(0.05)
    assert call_sid is not None, "no page call to alice"
    deadline = (await stack.state(n)).escalation.deadline
    assert deadline is not None
    await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds() + offset))
    by_sms, by_key = await asyncio.gather(
        stack.twilio_post(SMS, inbound_sms(ALICE_SMS, f"ack {n}")),
        stack.twilio_post(VOICE, call_webhook(call_sid, ALICE_PHONE, digits="1")),
    )
    assert by_sms.status_code == 200 and by_key.status_code == 200, (by_sms.text, by_key.text)
    await asyncio.sleep(1.0)  # let a level-2 page that raced the ack show up
    state = await stack.state(n)
    assert (state.status, state.acknowledged_by) == (IncidentStatus.ACKNOWLEDGED, "alice")
    acks = [e for e in state.timeline if e.kind == "ack"]
    assert len(acks) == 1, [e.text for e in acks]
    assert [p.step for p in state.pages if p.step >= 2] == []
    assert len([p for p in state.pages if p.step == 1]) <= 1


async def test_sms_and_key_press_ack_at_the_deadline_one_ack_at_most_one_escalation(make_stack):
    async with make_stack(paging_policy(ack_timeout="3s")) as stack:
        started = time.monotonic()
        await asyncio.gather(*(_race(stack, offset) for offset in (-0.1, 0.0, 0.1)))
        # alice got a call and a text per incident; bob at most one level-2 page (a call and a text) each.
        records = stack.twilio.unclaimed()
        assert len([r for r in records if r.to in (ALICE_PHONE, ALICE_SMS)]) == 2 * 3
        assert len([r for r in records if r.to in (BOB_SMS, BOB_PHONE)]) <= 2 * 3
        stack.twilio.claim_all()
        assert time.monotonic() - started < 30
