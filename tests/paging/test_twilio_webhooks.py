"""The Twilio webhooks over HTTP: signatures, senders, redeliveries, replies.

Each test runs the API, a worker and the fakes on the real Temporal dev server,
declares incidents through the API, and posts webhooks signed with the real
RequestValidator algorithm (or not signed, or signed wrongly)."""

from __future__ import annotations

import logging

import pytest

from tests.fakes import AUTH_TOKEN, FROM_NUMBER, inbound_sms, sign, status_callback
from tests.paging.conftest import (
    ALICE_SMS,
    BOB_SMS,
    PUBLIC_URL,
    STRANGER,
    paging_policy,
    timeline,
)
from warroom.models.incident import IncidentStatus

SMS = "/api/webhooks/twilio/sms"
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


async def paged(stack, number: int, to: str = ALICE_SMS):
    """Wait for the page SMS of incident ``number`` to reach ``to`` and claim it."""
    return await stack.twilio.expect("sms", to=to, contains=f"#{number}")


@pytest.mark.parametrize(
    "how",
    ["unsigned", "forged", "signed for the Host header's URL", "signed for another body", "signed for another path"],
)
async def test_a_request_without_a_valid_signature_is_refused_and_changes_nothing(make_stack, how):
    async with make_stack() as stack:
        n = await stack.declare()
        await paged(stack, n)
        params = inbound_sms(ALICE_SMS, f"ack {n}")
        if how == "unsigned":
            response = await stack.twilio_post(SMS, params, signature=None)
        elif how == "forged":
            response = await stack.twilio_post(SMS, params, signature=sign("not-the-token", PUBLIC_URL + SMS, params))
        elif how == "signed for the Host header's URL":
            response = await stack.twilio_post(SMS, params, url="http://127.0.0.1:8000" + SMS)
        elif how == "signed for another body":
            signature = sign(AUTH_TOKEN, PUBLIC_URL + SMS, inbound_sms(ALICE_SMS, "help", sid=params["MessageSid"]))
            response = await stack.twilio_post(SMS, params, signature=signature)
        else:
            response = await stack.twilio_post(SMS, params, url=PUBLIC_URL + "/api/webhooks/twilio/status")
        assert response.status_code == 403
        assert "X-Twilio-Signature" in response.json()["detail"]
        state = await stack.state(n)
        assert state.acknowledged_by is None and "ack" not in [e.kind for e in state.timeline]
        # Nothing was claimed either: the genuine delivery still acts.
        ok = await stack.twilio_post(SMS, params)
        assert f"#{n} acknowledged" in ok.text


@pytest.mark.parametrize("path", [SMS, "/api/webhooks/twilio/voice", "/api/webhooks/twilio/status"])
async def test_without_an_auth_token_every_twilio_webhook_is_refused(make_stack, path):
    async with make_stack(twilio_auth_token=None) as stack:
        n = await stack.declare()
        await stack.twilio.expect_nothing(0.3)  # no token: no Twilio pages either (console)
        params = inbound_sms(ALICE_SMS, f"ack {n}")
        response = await stack.twilio_post(path, params)
        assert response.status_code == 403
        assert "WARROOM_TWILIO_AUTH_TOKEN" in response.json()["detail"]
        assert (await stack.state(n)).acknowledged_by is None


async def test_an_unknown_sender_acknowledges_nothing_gets_no_answer_and_is_logged_masked(make_stack, caplog):
    caplog.set_level(logging.INFO, logger="warroom")
    async with make_stack() as stack:
        n = await stack.declare()
        await paged(stack, n)
        response = await stack.sms(STRANGER, f"ack {n}")
        assert response.text == EMPTY
        assert (await stack.state(n)).acknowledged_by is None
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unknown number ***9999" in logged
    assert STRANGER not in logged and "5005559999" not in logged


async def test_an_sms_from_warroom_s_own_number_is_ignored(make_stack):
    async with make_stack() as stack:
        n = await stack.declare()
        await paged(stack, n)
        response = await stack.sms(FROM_NUMBER, "ack")
        assert response.text == EMPTY
        assert (await stack.state(n)).acknowledged_by is None


async def test_the_same_sms_delivered_twice_acts_once_and_gets_the_same_answer(make_stack):
    async with make_stack() as stack:
        n = await stack.declare()
        await paged(stack, n)
        params = inbound_sms(ALICE_SMS, f"esc {n}")
        first = await stack.twilio_post(SMS, params)
        await paged(stack, n, to=BOB_SMS)
        replayed = await stack.twilio_post(SMS, params)
        assert first.status_code == replayed.status_code == 200
        assert replayed.text == first.text and f"#{n} escalated" in first.text
        state = await stack.state(n)
        assert state.escalation.step == 1
        assert [e.kind for e in state.timeline].count("escalation") == 1
        await stack.twilio.expect_nothing(0.5)


async def test_answers_to_one_number_are_limited_so_two_machines_cannot_loop(make_stack):
    async with make_stack(sms_reply_limit=2) as stack:
        answers = [await stack.sms(ALICE_SMS, "Thanks for your message, I am away") for _ in range(3)]
        assert "reply 'ack'" in answers[0].text and "reply 'ack'" in answers[1].text
        assert answers[2].text == EMPTY


async def test_the_answers_say_what_happened(make_stack):
    async with make_stack(paging_policy(postmortem_required_for=[])) as stack:
        assert "No incident has paged you recently." in (await stack.sms(ALICE_SMS, "ack")).text
        assert "Unknown incident #9." in (await stack.sms(ALICE_SMS, "ack 9")).text
        n = await stack.declare()
        await paged(stack, n)
        assert f"#{n} acknowledged" in (await stack.sms(ALICE_SMS, "ack")).text
        assert f"#{n} was already acknowledged by alice." in (await stack.sms(BOB_SMS, f"{n}")).text
        assert (await stack.sms(ALICE_SMS, "STOP")).text == EMPTY  # Twilio answers STOP itself
        resolved = await stack.http.post(f"/api/incidents/{n}/resolve", json={"summary": "Queue drained."})
        assert resolved.status_code == 200
        await stack.twilio.expect("sms", to=ALICE_SMS, contains="resolved")
        await stack.wait_for(n, lambda s: s.status == IncidentStatus.CLOSED, what="closed")
        # The workflow has finished: the answer comes from the read model.
        assert f"#{n} was already resolved." in (await stack.sms(ALICE_SMS, f"ack {n}")).text


async def test_ack_all_acknowledges_every_open_incident_paging_the_sender(make_stack):
    async with make_stack() as stack:
        first, second = await stack.declare("DNS slow"), await stack.declare("Mail slow")
        await paged(stack, first)
        await paged(stack, second)
        answer = await stack.sms(ALICE_SMS, "ack all")
        assert f"#{first} and #{second} acknowledged" in answer.text
        for n in (first, second):
            state = await stack.state(n)
            assert state.acknowledged_by == "alice"
            assert "Acknowledged by alice via sms" in timeline(state)
        # The audit log has the SMS as alice's command, her number masked.
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from warroom.models.tables import AuditRow

        with Session(stack.engine) as session:
            (entry,) = session.scalars(select(AuditRow).where(AuditRow.action == "inbound_sms"))
        assert (entry.actor, entry.accepted, entry.credential) == ("alice", True, "twilio sms from ***0006")
        assert str(first) in entry.reason and "5005550006" not in entry.credential + entry.detail + entry.reason


async def test_a_signed_request_that_is_not_a_message_is_a_400(make_stack):
    async with make_stack() as stack:
        response = await stack.twilio_post(SMS, {"Body": "ack"})
        assert response.status_code == 400
        assert "MessageSid" in response.json()["detail"]


async def test_a_status_callback_for_an_unknown_message_changes_nothing(make_stack):
    async with make_stack() as stack:
        response = await stack.twilio_post("/api/webhooks/twilio/status",
                                           status_callback("SM" + "f" * 32, "undelivered", "30003"))
        assert response.status_code == 204


async def test_a_call_that_carries_a_reminder_reads_it_out_and_offers_no_keys(make_stack):
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from tests.fakes import call_webhook
    from warroom.models.tables import NotificationRow

    async with make_stack() as stack:
        with Session(stack.engine) as session, session.begin():
            session.add(NotificationRow(
                key="incident-7/first-status/pat/voice", incident_number=7, person_id="pat", channel="voice",
                provider="twilio", kind="reminder", subject="#7: first public update due",
                text="warroom #7: the status page has said nothing yet.", status="sent", detail="",
                provider_id="CA" + "7" * 32, created_at=datetime.now(UTC),
            ))
        answer = await stack.twilio_post("/api/webhooks/twilio/voice", call_webhook("CA" + "7" * 32, "+15005550020"))
        assert "<Say>warroom #7: the status page has said nothing yet.</Say><Hangup />" in answer.text
        assert "<Gather" not in answer.text


def _set_disabled(engine, user: str, disabled: bool) -> None:
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from tests.access import ensure_user
    from warroom.auth import store
    from warroom.models.access import Role

    ensure_user(engine, "root", Role.ADMIN)  # warroom never disables its last admin
    with Session(engine) as session, session.begin():
        store.update_user(session, user, disabled=disabled, now=datetime.now(UTC))


async def test_a_disabled_account_acknowledges_nothing_by_sms_or_key_press(make_stack):
    """Disabling someone takes their phone's answers away as it takes their tokens: an SMS or a
    key press from them is answered with the reason and changes nothing."""
    from tests.fakes import call_webhook
    from tests.paging.conftest import ALICE_PHONE

    async with make_stack() as stack:
        n = await stack.declare("Control panel returns 502", "SEV-1")
        call = await stack.twilio.expect("call", to=ALICE_PHONE)
        await paged(stack, n)
        _set_disabled(stack.engine, "alice", True)
        sms = await stack.sms(ALICE_SMS, f"ack {n}")
        assert "account is disabled" in sms.text and "acknowledged" in sms.text
        pressed = await stack.twilio_post("/api/webhooks/twilio/voice", call_webhook(call.sid, ALICE_PHONE, digits="1"))
        assert "account is disabled" in pressed.text and "<Hangup />" in pressed.text
        assert (await stack.state(n)).acknowledged_by is None
        _set_disabled(stack.engine, "alice", False)
        again = await stack.sms(ALICE_SMS, f"ack {n}")
        assert f"#{n} acknowledged" in again.text
        assert (await stack.state(n)).acknowledged_by == "alice"
