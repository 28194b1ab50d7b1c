"""Twilio webhooks: SMS replies, the page call's words and key presses, delivery callbacks.

Every request must carry a valid ``X-Twilio-Signature`` computed over the URL
Twilio was configured with, which warroom rebuilds from
``WARROOM_PUBLIC_BASE_URL`` and the request's path (never from the Host header,
which a proxy rewrites). A missing or bad signature is a 403 and changes
nothing; with no auth token configured the webhooks refuse everything.

Each request that acts is claimed first by a unique row (``sms:<MessageSid>``,
``voice:<CallSid>:<Digits>``, ``status:<Sid>:<status>``), so Twilio delivering
the same webhook twice acts once; the redelivery gets the first answer back.
Senders are matched to people by the numbers in the policy; an unknown sender
acknowledges nothing, gets no answer, and is logged with a masked number.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.service import RPCError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from warroom.api import commands
from warroom.api import oncall as oncall_routes
from warroom.api.auth import note_for_audit, signed_by_twilio
from warroom.models import messages
from warroom.models.ids import incident_workflow_id
from warroom.models.incident import (
    AckInput,
    CommandResult,
    DeliveryStatusInput,
    EscalateInput,
    IncidentStatus,
    NotificationKind,
)
from warroom.models.paging import (
    Delivery,
    SmsAction,
    contact_ref,
    delivery_outcome,
    mask_contact,
    number_digits,
    parse_sms,
    people_by_number,
    same_number,
)
from warroom.models.tables import IncidentRow, NotificationRow, TwilioWebhook, UserRow
from warroom.workflows import IncidentWorkflow

log = logging.getLogger("warroom.api.twilio")

router = APIRouter(prefix="/api/webhooks/twilio", tags=["webhooks"], dependencies=[Depends(signed_by_twilio)])

MAX_BODY = 64 * 1024
PAGE_KIND_VALUES = [k.value for k in (NotificationKind.PAGE, NotificationKind.ESCALATION, NotificationKind.FALLBACK)]
NOT_RECEIVED = ("withdrawn", "queued", "bundling", "failed")
"""Page rows that never reached the person: they do not count as 'paged to them'."""
ACK_ALL_WINDOW = timedelta(days=2)
TWIML = "application/xml"


def _rt(request: Request) -> Any:
    return request.app.state.runtime


async def _db(rt: Any, fn: Callable[[Session], Any]) -> Any:
    def run() -> Any:
        with Session(rt.engine) as session, session.begin():
            return fn(session)

    return await run_in_threadpool(run)


def _twiml(body: Any) -> Response:
    return Response(content=str(body), media_type=TWIML)


async def verified_params(request: Request, rt: Any) -> dict[str, str]:
    """The form fields of a request Twilio signed, or a 403 that changes nothing."""
    settings = rt.settings
    if settings.twilio_auth_token is None or not settings.public_base_url:
        raise HTTPException(
            status_code=403,
            detail="Twilio webhooks are refused: configure WARROOM_TWILIO_AUTH_TOKEN and WARROOM_PUBLIC_BASE_URL "
            "so that their signatures can be checked",
        )
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(status_code=413, detail="a Twilio webhook body is never this large")
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(status_code=400, detail="the body must be form-encoded UTF-8") from None
    signature = request.headers.get("x-twilio-signature")
    if not signature:
        log.warning("Twilio webhook %s without X-Twilio-Signature refused", request.url.path)
        raise HTTPException(status_code=403, detail="missing X-Twilio-Signature")
    url = settings.public_base_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    if not validator.validate(url, params, signature):
        log.warning("Twilio webhook %s with a bad signature refused", request.url.path)
        raise HTTPException(status_code=403, detail="X-Twilio-Signature does not match")
    return params


# --- the claim that makes a redelivery act once ------------------------------------------


@dataclass
class Claim:
    fresh: bool
    response: str | None = None


async def _claim(rt: Any, key: str, kind: str, sender: str | None, person: str | None) -> Claim:
    now = rt.clock()

    def run(session: Session) -> Claim:
        existing = session.get(TwilioWebhook, key)
        if existing is not None:
            return Claim(fresh=False, response=existing.response)
        try:
            with session.begin_nested():
                session.add(TwilioWebhook(
                    key=key, kind=kind, sender_ref=contact_ref("sms", sender) if sender else None,
                    person_id=person, received_at=now, replied=False, outcome="", response=None,
                ))
        except IntegrityError:
            other = session.get(TwilioWebhook, key)
            return Claim(fresh=False, response=other.response if other else None)
        return Claim(fresh=True)

    return await _db(rt, run)


async def _settle(rt: Any, key: str, outcome: str, response: str, replied: bool = False) -> None:
    def run(session: Session) -> None:
        row = session.get(TwilioWebhook, key)
        if row is not None:
            row.outcome, row.response, row.replied = outcome[:2000], response, replied

    await _db(rt, run)


async def _unclaim(rt: Any, key: str) -> None:
    """The action could not be carried out (Temporal unreachable): let a redelivery try."""
    await _db(rt, lambda s: s.execute(delete(TwilioWebhook).where(TwilioWebhook.key == key)))


async def _disabled(rt: Any, person: str) -> bool:
    """Whether ``person`` has a warroom account that an admin disabled: their phone answers then
    act no more than their API tokens do. (A person of the policy with no account at all may
    still answer a page: being paged is what the policy gives them.)"""
    def run(session: Session) -> bool:
        row = session.get(UserRow, person)
        return row is not None and row.disabled_at is not None

    return bool(await _db(rt, run))


async def _replies_allowed(rt: Any, sender: str) -> bool:
    settings, ref = rt.settings, contact_ref("sms", sender)
    since = rt.clock() - timedelta(seconds=settings.sms_reply_window_seconds)

    def count(session: Session) -> int:
        return int(session.scalar(
            select(func.count()).select_from(TwilioWebhook).where(
                TwilioWebhook.sender_ref == ref, TwilioWebhook.replied.is_(True), TwilioWebhook.received_at >= since
            )
        ) or 0)

    return await _db(rt, count) < settings.sms_reply_limit


# --- carrying out a command for a person ------------------------------------------------


async def _refusal_reply(rt: Any, number: int, reason: str) -> str:
    """Why the incident said no, in the words of the reply."""
    try:
        view = await commands.call(
            rt.client.get_workflow_handle(incident_workflow_id(number)).query(IncidentWorkflow.view),
            rt.settings.command_timeout_seconds, "reading the incident",
        )
        state = view.state
    except (commands.IncidentGone, HTTPException):
        state = None
    if state is not None and state.status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED):
        return messages.reply_resolved(number)
    if state is not None and state.acknowledged_by:
        return messages.reply_already_acknowledged(number, state.acknowledged_by)
    return messages.reply_refused(number, reason)


async def _gone_reply(rt: Any, number: int) -> str:
    """The incident's workflow has finished (closed) or never existed."""
    def status(session: Session) -> str | None:
        row = session.get(IncidentRow, number)
        return row.status if row is not None else None

    if await _db(rt, status) in (IncidentStatus.RESOLVED.value, IncidentStatus.CLOSED.value):
        return messages.reply_resolved(number)
    return messages.reply_unknown_incident(number)


async def acknowledge(rt: Any, number: int, person: str, via: str) -> tuple[bool, str]:
    try:
        await commands.update(rt.client, number, IncidentWorkflow.acknowledge, AckInput(person=person, via=via),
                              rt.settings.command_timeout_seconds)
    except commands.IncidentGone:
        return False, await _gone_reply(rt, number)
    except HTTPException as err:
        if err.status_code != 409:
            raise
        return False, await _refusal_reply(rt, number, str(err.detail))
    log.info("incident acknowledged by %s via %s", person, via, extra={"incident": number})
    return True, messages.reply_acknowledged([number])


async def escalate(rt: Any, number: int, person: str, via: str, from_step: int | None) -> str:
    if from_step is None:
        from_step = await _last_step(rt, number, person)
    try:
        result: CommandResult = await commands.update(
            rt.client, number, IncidentWorkflow.escalate, EscalateInput(by=person, via=via, from_step=from_step),
            rt.settings.command_timeout_seconds,
        )
    except commands.IncidentGone:
        return await _gone_reply(rt, number)
    except HTTPException as err:
        if err.status_code != 409:
            raise
        return await _refusal_reply(rt, number, str(err.detail))
    if not result.changed:
        return messages.reply_already_escalated(number)
    log.info("incident escalated by %s via %s", person, via, extra={"incident": number})
    return messages.reply_escalated(number)


async def _last_step(rt: Any, number: int, person: str) -> int | None:
    """The escalation step of the last page this person got for the incident: an
    ``esc`` escalates from there, so a second ``esc`` for the same page does nothing."""
    def run(session: Session) -> int | None:
        return session.scalar(
            select(NotificationRow.step)
            .where(NotificationRow.incident_number == number, NotificationRow.person_id == person,
                   NotificationRow.step.is_not(None))
            .order_by(NotificationRow.created_at.desc())
            .limit(1)
        )

    return await _db(rt, run)


async def _last_paged(rt: Any, person: str) -> int | None:
    def run(session: Session) -> int | None:
        return session.scalar(
            select(NotificationRow.incident_number)
            .where(NotificationRow.person_id == person, NotificationRow.kind.in_(PAGE_KIND_VALUES),
                   NotificationRow.status.not_in(NOT_RECEIVED))
            .order_by(NotificationRow.created_at.desc())
            .limit(1)
        )

    return await _db(rt, run)


async def _paging_incidents(rt: Any, person: str) -> list[int]:
    since = rt.clock() - ACK_ALL_WINDOW

    def run(session: Session) -> list[int]:
        numbers = session.scalars(
            select(NotificationRow.incident_number)
            .where(NotificationRow.person_id == person, NotificationRow.kind.in_(PAGE_KIND_VALUES),
                   NotificationRow.status.not_in(NOT_RECEIVED), NotificationRow.created_at >= since)
            .distinct()
        )
        found = sorted(set(numbers))
        closed = set(session.scalars(
            select(IncidentRow.number).where(
                IncidentRow.number.in_(found),
                IncidentRow.status.in_([IncidentStatus.RESOLVED.value, IncidentStatus.CLOSED.value]),
            )
        )) if found else set()
        return [n for n in found if n not in closed]

    return await _db(rt, run)


async def run_sms(rt: Any, person: str, body: str) -> tuple[str | None, str]:
    """Carry out one SMS reply; returns (the answer, what happened for the record)."""
    cmd = parse_sms(body)
    if cmd.action == SmsAction.CARRIER:
        return None, "carrier keyword, left to Twilio"
    if cmd.action == SmsAction.UNKNOWN:
        return messages.reply_help(), "not understood"
    if cmd.action == SmsAction.ACK_ALL:
        acked = []
        for number in await _paging_incidents(rt, person):
            ok, _ = await acknowledge(rt, number, person, "sms")
            if ok:
                acked.append(number)
        if not acked:
            return messages.reply_nothing_to_ack(), "ack all: nothing open"
        return messages.reply_acknowledged(acked), f"acknowledged {acked}"
    number = cmd.number if cmd.number is not None else await _last_paged(rt, person)
    if number is None:
        return messages.reply_unknown_incident(None), "no incident paged this person"
    if cmd.action == SmsAction.ACK:
        ok, reply = await acknowledge(rt, number, person, "sms")
        return reply, f"ack #{number}: {'done' if ok else reply}"
    reply = await escalate(rt, number, person, "sms", None)
    return reply, f"esc #{number}: {reply}"


async def _pages_sent_as(
    rt: Any, sid: str, patience: float = 2.0, pages_only: bool = True
) -> list[tuple[int, str, int | None, str]]:
    """The (page) rows a provider message/call id belongs to. The provider may call
    back before the send activity has stored the id it was given, so look again for
    a moment before concluding the id is not ours."""
    def run(session: Session) -> list[tuple[int, str, int | None, str]]:
        query = select(NotificationRow).where(NotificationRow.provider_id == sid)
        if pages_only:
            query = query.where(NotificationRow.kind.in_(PAGE_KIND_VALUES))
        return [(r.incident_number, r.person_id, r.step, r.subject) for r in session.scalars(query)]

    deadline = time.monotonic() + patience
    while True:
        rows = await _db(rt, run)
        if rows or time.monotonic() >= deadline:
            return rows
        await asyncio.sleep(0.1)


def _spoken(text: str) -> str:
    """An SMS answer read out on the call: '#42' is said as 'incident 42'."""
    said = re.sub(r"#(\d+)", r"incident \1", text)
    return said[:1].upper() + said[1:]


# --- routes --------------------------------------------------------------------------------


@router.post("/sms", response_class=Response, responses={200: {"content": {TWIML: {}}}})
async def inbound_sms(request: Request) -> Response:
    """An SMS reply to a page: ``ack``, ``ack 42``, ``42``, ``esc 42``, ``ack all``."""
    rt = _rt(request)
    params = await verified_params(request, rt)
    sid, sender, body = params.get("MessageSid") or params.get("SmsSid"), params.get("From", ""), params.get("Body", "")
    if not sid or not sender:
        raise HTTPException(status_code=400, detail="not an inbound message: MessageSid and From are required")
    silent = MessagingResponse()
    if same_number(sender, rt.settings.twilio_from_number):
        log.warning("SMS from warroom's own number ignored")
        return _twiml(silent)
    person = people_by_number(await oncall_routes.current_policy(rt)).get(number_digits(sender))
    note_for_audit(request, actor=person, credential=f"twilio sms from {mask_contact(sender)}")
    key = f"sms:{sid}"
    claim = await _claim(rt, key, "sms", sender, person)
    if not claim.fresh:
        log.info("SMS %s delivered again: answered as the first time", sid)
        return Response(content=claim.response or str(silent), media_type=TWIML)
    if person is None:
        log.warning("SMS from unknown number %s ignored: it acknowledges nothing and gets no answer",
                    mask_contact(sender))
        await _settle(rt, key, "unknown sender", str(silent))
        return _twiml(silent)
    if await _disabled(rt, person):
        log.warning("SMS from %s refused: their account is disabled", person)
        note_for_audit(request, reason="account disabled")
        refused = MessagingResponse()
        refused.message(messages.reply_account_disabled())
        await _settle(rt, key, "account disabled", str(refused), replied=True)
        return _twiml(refused)
    try:
        reply, outcome = await run_sms(rt, person, body)
    except HTTPException as err:
        if err.status_code != 503:
            raise
        await _unclaim(rt, key)
        reply, outcome = messages.reply_unavailable(), "incident unreachable"
    answer = MessagingResponse()
    replied = False
    if reply is not None:
        if await _replies_allowed(rt, sender):
            answer.message(reply)
            replied = True
        else:
            log.warning("answer to %s withheld: more than %d in %.0f s", mask_contact(sender),
                        rt.settings.sms_reply_limit, rt.settings.sms_reply_window_seconds)
            outcome += "; answer withheld (reply limit)"
    if outcome != "incident unreachable":
        await _settle(rt, key, outcome, str(answer), replied)
    log.info("SMS from %s (%s): %s", person, mask_contact(sender), outcome)
    note_for_audit(request, reason=outcome)
    return _twiml(answer)


@router.post("/voice", response_class=Response, responses={200: {"content": {TWIML: {}}}})
async def voice(request: Request) -> Response:
    """What a page call says when answered, and what its key press does:
    1 acknowledges, 2 escalates now, anything else repeats the prompt."""
    rt = _rt(request)
    params = await verified_params(request, rt)
    call_sid = params.get("CallSid")
    if not call_sid:
        raise HTTPException(status_code=400, detail="not a call webhook: CallSid is required")
    rows = await _pages_sent_as(rt, call_sid)
    digits = params.get("Digits", "").strip()
    if not rows:
        # Not a page: a reminder or notice to someone reachable only by phone is read out.
        notices = await _db(rt, lambda s: [r.text for r in s.scalars(
            select(NotificationRow).where(NotificationRow.provider_id == call_sid))])
        answer = VoiceResponse()
        answer.say(" ".join(notices) if notices else messages.voice_prompt([]))
        answer.hangup()
        return _twiml(answer)
    if digits not in ("1", "2"):
        return _twiml(await _prompt(rt, rows))
    key = f"voice:{call_sid}:{digits}"
    note_for_audit(request, actor=rows[0][1], credential="twilio call")
    if await _disabled(rt, rows[0][1]):
        log.warning("key press from %s refused: their account is disabled", rows[0][1])
        note_for_audit(request, reason="account disabled")
        refused_call = VoiceResponse()
        refused_call.say(messages.reply_account_disabled())
        refused_call.hangup()
        return _twiml(refused_call)
    claim = await _claim(rt, key, "voice", None, rows[0][1])
    if not claim.fresh:
        answer = VoiceResponse()
        answer.say("Your key press was already handled.")
        answer.hangup()
        return Response(content=claim.response or str(answer), media_type=TWIML)
    said = []
    try:
        for number, person, step, _ in rows:
            if digits == "1":
                _, reply = await acknowledge(rt, number, person, "voice")
            else:
                reply = await escalate(rt, number, person, "voice", step)
            said.append(_spoken(reply))
    except HTTPException as err:
        if err.status_code != 503:
            raise
        await _unclaim(rt, key)
        said = [messages.reply_unavailable()]
    answer = VoiceResponse()
    answer.say(" ".join(said))
    answer.hangup()
    await _settle(rt, key, f"key {digits}: {' '.join(said)}", str(answer))
    note_for_audit(request, reason=f"key {digits}: {' '.join(said)}")
    return _twiml(answer)


async def _prompt(rt: Any, rows: list[tuple[int, str, int | None, str]]) -> VoiceResponse:
    numbers = sorted({r[0] for r in rows})
    incidents = await _db(rt, lambda s: {
        r.number: (r.severity, r.title) for r in s.scalars(select(IncidentRow).where(IncidentRow.number.in_(numbers)))
    })
    items = []
    for number in numbers:
        severity, title = incidents.get(number, ("", next(r[3] for r in rows if r[0] == number)))
        items.append((number, severity, title))
    answer = VoiceResponse()
    gather = Gather(num_digits=1, action=rt.settings.public_base_url + "/api/webhooks/twilio/voice",
                    method="POST", timeout=8)
    gather.say(messages.voice_prompt(items))
    answer.append(gather)
    answer.say(messages.voice_no_input())
    return answer


@router.post("/status", status_code=204, response_class=Response)
async def delivery_status(request: Request) -> Response:
    """Twilio's word on what became of a page SMS or call; a failure sends the page
    on to the person's next contact method at once."""
    rt = _rt(request)
    params = await verified_params(request, rt)
    sid = params.get("MessageSid") or params.get("CallSid")
    if not sid:
        raise HTTPException(status_code=400, detail="not a status callback: MessageSid or CallSid is required")
    outcome = delivery_outcome(params)
    if outcome is None:
        return Response(status_code=204)
    if not await _pages_sent_as(rt, sid, pages_only=False):
        log.info("delivery callback for a message or call warroom did not send ignored")
        return Response(status_code=204)
    key = f"status:{sid}:{outcome.status}"
    if not (await _claim(rt, key, "status", None, None)).fresh:
        return Response(status_code=204)

    def record(session: Session) -> list[tuple[str, int, str | None]]:
        found = []
        for row in session.scalars(select(NotificationRow).where(NotificationRow.provider_id == sid)):
            row.status = "delivered" if outcome.outcome == Delivery.DELIVERED else outcome.status[:16]
            row.detail = outcome.detail
            found.append((row.key, row.incident_number, row.workflow_id))
        return found

    rows = await _db(rt, record)
    for page_key, number, workflow_id in rows:
        handle = rt.client.get_workflow_handle(workflow_id or incident_workflow_id(number))
        try:
            await handle.signal(
                IncidentWorkflow.delivery_status,
                DeliveryStatusInput(key=page_key, outcome=outcome.outcome.value, status=outcome.status,
                                    detail=outcome.detail),
            )
        except RPCError as err:
            log.info("delivery callback for a finished incident ignored (%s)", err.status, extra={"incident": number})
    await _settle(rt, key, f"{outcome.status}: {len(rows)} page(s)", "")
    return Response(status_code=204)
