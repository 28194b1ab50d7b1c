"""Slack talks to warroom: the ``/warroom`` slash command, the status message's buttons,
and the Events API (a reaction that copies a message to the timeline).

Every request must carry Slack's signature (``X-Slack-Signature``, HMAC-SHA256
with the signing secret over ``v0:<timestamp>:<body>``) and a timestamp within
five minutes of now: anything else is refused with 403 and changes nothing.
The same signed request sent again within those five minutes (a replay, or a
proxy retrying) acts once: a command or button gets 409, an event a plain 200.

The Slack user is then mapped to a warroom person (``WARROOM_SLACK_USERS`` or
the policy's ``slack:`` field of a person) and acts with exactly that person's
rights: their warroom user must exist, be enabled and be at least a responder,
as for the same command through the API. The command goes through the same
workflow update as the API's, and every request is written to the audit log
(refusals too). Slack shows only answers with status 200, so a refusal of a
genuine Slack request is a polite 200 answer for the person, recorded in the
audit log as refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.api import commands
from warroom.api import oncall as oncall_routes
from warroom.api.auth import Access, _mark, _state, note_for_audit
from warroom.models.access import Role
from warroom.models.chat import (
    ACK_ACTION,
    ESCALATE_ACTION,
    USAGE,
    SLACK_REPLAY_WINDOW_SECONDS,
    CommandProblem,
    SlashCommand,
    parse_command,
    slack_request_problem,
)
from warroom.models.incident import (
    AckInput,
    CommandResult,
    EscalateInput,
    NoteInput,
    ResolveInput,
    RoleInput,
    SeverityInput,
    StatusUpdateInput,
)
from warroom.models.policy import Policy
from warroom.models.severity import Severity
from warroom.models.tables import ChatChannelRow, UserRow, first_slack_request
from warroom.workflows import IncidentWorkflow

log = logging.getLogger("warroom.api.slack")

MAX_BODY = 64 * 1024


def signed_by_slack() -> None:
    """Slack's requests authenticate by X-Slack-Signature, checked by the route itself."""


_mark(signed_by_slack, Access("slack", why="X-Slack-Signature with the signing secret, at most 5 minutes old"))

router = APIRouter(prefix="/api/slack", tags=["slack"], dependencies=[Depends(signed_by_slack)])


def _rt(request: Request) -> Any:
    return request.app.state.runtime


async def _db(rt: Any, fn: Callable[[Session], Any]) -> Any:
    def run() -> Any:
        with Session(rt.engine) as session, session.begin():
            return fn(session)

    return await run_in_threadpool(run)


class AlreadyReceived(Exception):
    """This signed request was acted on before."""


async def verified_body(request: Request, rt: Any) -> bytes:
    """The body of a request Slack signed in the last five minutes, or a 403 that changes nothing.

    Raises AlreadyReceived for a request whose signature was seen before (see SlackRequestRow)."""
    settings = rt.settings
    if not settings.slack_configured or settings.slack_signing_secret is None:
        note_for_audit(request, credential="none", reason="Slack is not configured")
        raise HTTPException(
            status_code=403,
            detail="Slack requests are refused: configure WARROOM_SLACK_BOT_TOKEN and WARROOM_SLACK_SIGNING_SECRET",
        )
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(status_code=413, detail="a Slack request body is never this large")
    problem = slack_request_problem(
        settings.slack_signing_secret.get_secret_value(),
        request.headers.get("x-slack-request-timestamp"),
        request.headers.get("x-slack-signature"),
        body,
        rt.clock().timestamp(),
    )
    if problem is not None:
        log.warning("Slack request to %s refused: %s", request.url.path, problem)
        note_for_audit(request, credential="slack signature (bad)", reason=problem)
        raise HTTPException(status_code=403, detail=problem)
    now = rt.clock()
    signature = str(request.headers.get("x-slack-signature"))
    forget_before = now - timedelta(seconds=2 * SLACK_REPLAY_WINDOW_SECONDS)
    if not await _db(rt, lambda session: first_slack_request(session, signature, now, forget_before)):
        log.warning("Slack request to %s ignored: the same signed request was received before", request.url.path)
        note_for_audit(request, credential="slack signature", reason="the same signed request again: ignored")
        raise AlreadyReceived
    return body


def _again() -> HTTPException:
    return HTTPException(status_code=409, detail="this signed Slack request was already received; it acts once")


def _form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50))
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(status_code=400, detail="the body must be form-encoded UTF-8") from None


# --- who is this, and may they ---------------------------------------------------------------


def directory(policy: Policy, overrides: dict[str, str]) -> dict[str, str]:
    """Person id -> Slack member id: the settings' map wins over the policy's ``slack:``."""
    found = {pid: p.slack for pid, p in policy.people.items() if p.slack}
    found.update(overrides)
    return found


async def person_for(rt: Any, slack_user: str) -> str | None:
    policy = await oncall_routes.current_policy(rt)
    for pid, member in directory(policy, rt.settings.slack_users).items():
        if member == slack_user:
            return pid
    return None


async def _refusal(rt: Any, person: str) -> str | None:
    """Why ``person`` may not command an incident (as in the API: an enabled responder or above)."""

    def load(session: Session) -> tuple[str, bool] | None:
        row = session.get(UserRow, person)
        return (row.role, row.disabled_at is not None) if row is not None else None

    found = await _db(rt, load)
    if found is None:
        return f"{person} has no warroom user, so cannot act on incidents (an admin can create one)"
    role, disabled = found
    if disabled:
        return f"user {person} is disabled"
    if not Role(role).at_least(Role.RESPONDER):
        return f"{person} is {Role(role).article} {role}; this needs a responder or above"
    return None


class Refused(Exception):
    """A genuine Slack request that warroom will not act on; the text is for the person."""


async def _actor(request: Request, rt: Any, slack_user: str) -> str:
    if not slack_user:
        raise HTTPException(status_code=400, detail="no user_id in the request")
    person = await person_for(rt, slack_user)
    note_for_audit(request, actor=person or f"slack:{slack_user[:20]}", credential=f"slack user {slack_user[:20]}")
    if person is None:
        raise Refused(
            "Sorry, your Slack account is not linked to a warroom person, so warroom cannot act for you. "
            "Ask an admin to add your Slack member id to your person in the policy (slack: U...) "
            "or to WARROOM_SLACK_USERS."
        )
    reason = await _refusal(rt, person)
    if reason is not None:
        raise Refused(f"Sorry, warroom cannot do that for you: {reason}.")
    return person


async def _incident_for(rt: Any, number: int | None, channel: str) -> int:
    if number is not None:
        return number

    def load(session: Session) -> int | None:
        return session.scalar(select(ChatChannelRow.incident_number).where(ChatChannelRow.channel_id == channel))

    found = await _db(rt, load) if channel else None
    if found is None:
        raise Refused(f"This channel is not an incident's. Name the incident: `/warroom 42 ack`. {USAGE}")
    return int(found)


async def _run(rt: Any, number: int, method: Any, arg: Any) -> CommandResult:
    try:
        return await commands.update(rt.client, number, method, arg, rt.settings.command_timeout_seconds)
    except commands.IncidentGone:
        raise Refused(f"Incident #{number} is not open (or does not exist); it takes no more commands.") from None
    except HTTPException as err:
        if err.status_code < 500:  # refused for a reason (409, 422): trying again would not help
            raise Refused(f"Not done: {err.detail}") from None
        raise Refused(f"Not done: {err.detail}. Try again in a moment.") from None


def _answer(request: Request, text: str, *, accepted: bool, number: int | None = None) -> JSONResponse:
    note_for_audit(request, reason=text[:500])
    if not accepted:
        _state(request, audit_accepted=False)  # answered 200 so that Slack shows it, but refused
    content: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if number is not None:
        content["incident_id"] = number
    return JSONResponse(content)


async def _slack_person(rt: Any, who: str) -> str:
    """A role's new holder as written: a Slack mention (mapped) or a warroom person id."""
    if who[:1] in ("U", "W") and who.isupper():
        person = await person_for(rt, who)
        if person is None:
            raise Refused(f"<@{who}> is not linked to a warroom person; name them by their warroom id instead.")
        return person
    return who.lower()


async def _execute(rt: Any, cmd: SlashCommand, number: int, person: str) -> CommandResult:
    wf = IncidentWorkflow
    if cmd.verb == "ack":
        return await _run(rt, number, wf.acknowledge, AckInput(person=person, via="slack"))
    if cmd.verb == "status":
        return await _run(rt, number, wf.post_status_update, StatusUpdateInput(message=cmd.text, author=person))
    if cmd.verb == "sev":
        arg = SeverityInput(severity=Severity(f"SEV-{cmd.severity}"), by=person, reason="from Slack")
        return await _run(rt, number, wf.change_severity, arg)
    if cmd.verb == "role":
        assert cmd.role is not None and cmd.person is not None
        holder = await _slack_person(rt, cmd.person)
        return await _run(rt, number, wf.assign_role, RoleInput(role=cmd.role, person=holder, by=person))
    if cmd.verb == "resolve":
        return await _run(rt, number, wf.resolve, ResolveInput(summary=cmd.text, by=person))
    if cmd.verb == "note":
        return await _run(rt, number, wf.add_note, NoteInput(text=cmd.text, by=person, source="slack"))
    raise Refused(USAGE)


# --- routes ------------------------------------------------------------------------------------


@router.post("/commands")
async def slash_command(request: Request) -> JSONResponse:
    """``/warroom ack | status <text> | sev 2 | role ic @person | resolve <summary> | note <text>``."""
    rt = _rt(request)
    try:
        form = _form(await verified_body(request, rt))
    except AlreadyReceived:
        raise _again() from None
    number = None
    try:
        cmd = parse_command(form.get("text", ""))
        if cmd.verb == "help":
            return _answer(request, USAGE, accepted=True)
        person = await _actor(request, rt, form.get("user_id", ""))
        number = await _incident_for(rt, cmd.number, form.get("channel_id", ""))
        result = await _execute(rt, cmd, number, person)
    except CommandProblem as err:
        return _answer(request, f"Sorry: {err}", accepted=False, number=number)
    except Refused as err:
        return _answer(request, str(err), accepted=False, number=number)
    log.info("slack command %s by %s: %s", cmd.verb, person, result.message, extra={"incident": number})
    return _answer(request, f"Done: {result.message}.", accepted=True, number=number)


@router.post("/interactions")
async def interaction(request: Request) -> JSONResponse:
    """The status message's buttons: Acknowledge, Escalate now."""
    rt = _rt(request)
    try:
        form = _form(await verified_body(request, rt))
    except AlreadyReceived:
        raise _again() from None
    try:
        payload = json.loads(form.get("payload", ""))
        action = payload["actions"][0]
        action_id, value = str(action["action_id"]), str(action.get("value", ""))
        slack_user = str(payload["user"]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise HTTPException(status_code=400, detail="not a Slack block_actions payload") from None
    response_url = payload.get("response_url") if isinstance(payload.get("response_url"), str) else None
    number = int(value) if value.isdigit() and 1 <= int(value) <= 2**31 - 1 else None
    try:
        if action_id not in (ACK_ACTION, ESCALATE_ACTION) or number is None:
            raise Refused("That button is not one of warroom's.")
        person = await _actor(request, rt, slack_user)
        if action_id == ACK_ACTION:
            result = await _run(rt, number, IncidentWorkflow.acknowledge, AckInput(person=person, via="slack"))
        else:
            result = await _run(rt, number, IncidentWorkflow.escalate, EscalateInput(by=person, via="slack"))
        text, accepted = f"Done: {result.message}.", True
    except Refused as err:
        text, accepted = str(err), False
    if response_url:
        await _tell(response_url, text)
    return _answer(request, text, accepted=accepted, number=number)


async def _tell(response_url: str, text: str) -> None:
    """Show the person the outcome of a button (best effort: the channel shows it anyway)."""
    try:
        async with httpx.AsyncClient(timeout=3) as http:
            await http.post(response_url, json={"response_type": "ephemeral", "replace_original": False,
                                                "text": text})
    except httpx.HTTPError as err:
        log.warning("could not answer a Slack button (%s)", type(err).__name__)


@router.post("/events")
async def events(request: Request) -> JSONResponse:
    """Slack's Events API: the URL check, and ``reaction_added`` with the note reaction
    (default :pushpin:) on a message in an incident channel, which copies it to the timeline."""
    rt = _rt(request)
    try:
        body = await verified_body(request, rt)
    except AlreadyReceived:  # Slack takes anything but a 200 as "send it again"
        return JSONResponse({"ok": True})
    try:
        payload = json.loads(body)
        kind = payload.get("type")
    except (ValueError, AttributeError):
        raise HTTPException(status_code=400, detail="not a Slack event") from None
    if kind == "url_verification":
        note_for_audit(request, credential="slack signature", reason="URL verification")
        return JSONResponse({"challenge": str(payload.get("challenge", ""))})
    event = payload.get("event") if kind == "event_callback" else None
    if not isinstance(event, dict) or event.get("type") != "reaction_added":
        note_for_audit(request, credential="slack signature", reason="event ignored")
        return JSONResponse({"ok": True})
    item = event.get("item") or {}
    if event.get("reaction") != rt.settings.slack_note_reaction or item.get("type") != "message":
        note_for_audit(request, credential="slack signature", reason="reaction ignored")
        return JSONResponse({"ok": True})
    channel, ts = str(item.get("channel", "")), str(item.get("ts", ""))
    try:
        person = await _actor(request, rt, str(event.get("user", "")))
        number = await _incident_for(rt, None, channel)
        text = await asyncio.to_thread(_message_text, rt.settings, channel, ts)
        if not text:
            raise Refused("that message could not be read")
        result = await _run(rt, number, IncidentWorkflow.add_note,
                            NoteInput(text=text, by=person, source="Slack reaction", ref=f"{channel}/{ts}"))
    except Refused as err:
        return _answer(request, str(err), accepted=False)
    return _answer(request, result.message, accepted=True, number=number)


def _message_text(settings: Any, channel: str, ts: str) -> str:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackClientError

    assert settings.slack_bot_token is not None
    client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url,
                       timeout=int(max(1, settings.chat_timeout_seconds)))
    try:
        data = client.conversations_history(channel=channel, latest=ts, inclusive=True, limit=1).data
    except (SlackClientError, OSError) as err:
        log.warning("could not read the marked Slack message (%s)", type(err).__name__)
        return ""
    messages = data.get("messages") if isinstance(data, dict) else None
    if not messages:
        return ""
    return str(messages[0].get("text", ""))[:4000]
