"""The public status page, its JSON and feed, subscriptions, and maintenance windows.

Public (no login): ``/status`` (HTML), ``/status/incidents/{n}``,
``/status/history.atom``, ``/api/v2/*.json`` (the shape of Atlassian
Statuspage's public v2 API) and the subscription pages. Operators:
``/api/maintenance`` and ``/api/incidents/{n}/components``.

Forms are plain ``application/x-www-form-urlencoded`` posts: every page works
without JavaScript.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from warroom.activities.notify import mask_contact
from warroom.api import alerts, commands
from warroom.api.auth import Operator, acting_as, client_ip, public, rate_limit, require
from warroom.auth import store
from warroom.models.access import Bucket, Role
from warroom.models.components import ComponentState, ComponentStateInput, Maintenance, components_in_maintenance
from warroom.api.params import path_id
from warroom.models.ids import fanout_workflow_id
from warroom.models.paging import same_number
from warroom.models.subscribers import (
    CONFIRM,
    MAX_CODE_ATTEMPTS,
    UNSUBSCRIBE,
    FanoutInput,
    PublicEvent,
    PublicEventKind,
    SubscriberChannel,
    SubscriberStatus,
    normalise_contact,
    sign,
    sms_code,
    verify,
)
from warroom.models.tables import (
    HeldAlertRow,
    IncidentRow,
    MaintenanceRow,
    SubscriberRow,
    insert_ignoring_duplicates,
)
from warroom.statuspage import render
from warroom.statuspage.config import StatusPageConfig
from warroom.workflows import IncidentWorkflow, SubscriberFanoutWorkflow

if TYPE_CHECKING:
    from warroom.api.app import Runtime

router = APIRouter()
PAGE = [Depends(public("the public status page: customers read it without an account"))]
JSON = [Depends(public("the status page's public JSON and feed"))]
SUBSCRIPTION = [Depends(public("anyone may subscribe; signed links and codes prove the address"))]
VERIFY = "verify"
RESEND_AFTER = timedelta(seconds=60)
"""A pending subscription asked again within this gets no second confirmation message."""


def get_runtime(request: Request) -> "Runtime":
    return request.app.state.runtime


RuntimeDep = Annotated["Runtime", Depends(get_runtime)]


def _config(rt: "Runtime") -> StatusPageConfig:
    assert rt.statuspage is not None
    return rt.statuspage


def _db(rt: "Runtime", fn: Any) -> Any:
    def run() -> Any:
        with Session(rt.engine) as session, session.begin():
            return fn(session)

    return run_in_threadpool(run)


async def _view(rt: "Runtime") -> render.View:
    now = rt.clock()
    snap = await _db(rt, lambda s: render.load(s, now))
    return render.build(snap, _config(rt).catalog, now)


# --- the page, the feed, the JSON ------------------------------------------------------------


@router.get("/status", response_class=HTMLResponse, tags=["status page"], dependencies=PAGE)
async def status_page(rt: RuntimeDep, tz: Annotated[str | None, Query(max_length=64)] = None) -> HTMLResponse:
    view = await _view(rt)
    html = render.render_page(view, render.served_links(), render.parse_zone(tz))
    return HTMLResponse(html, headers={"Cache-Control": "public, max-age=15"})


@router.get("/status/incidents/{number}", response_class=HTMLResponse, tags=["status page"], dependencies=PAGE)
async def incident_page(
    number: Annotated[int, path_id("the incident number, e.g. 42")], rt: RuntimeDep, tz: Annotated[str | None, Query(max_length=64)] = None
) -> HTMLResponse:
    view = await _view(rt)
    incident = next((i for i in view.recent_incidents if i.number == number), None)
    if incident is None:
        incident = await _db(rt, lambda s: render.load_one(s, number))
    if incident is None:
        html = render.render_message(view, render.served_links(), "Incident not found",
                                     f"There is no incident #{number} on this status page.")
        return HTMLResponse(html, status_code=404)
    return HTMLResponse(render.render_incident(view, incident, render.served_links(), render.parse_zone(tz)))


@router.get("/status/history.atom", tags=["status page"], dependencies=JSON)
async def atom_feed(rt: RuntimeDep) -> Response:
    view = await _view(rt)
    return Response(render.render_atom(view, _config(rt).page_url), media_type="application/atom+xml")


V2_DOCUMENTS = render.V2_NAMES


@router.get("/api/v2/{document:path}", tags=["status page"], summary="Statuspage-v2-shaped public JSON",
            dependencies=JSON)
async def v2(document: str, rt: RuntimeDep) -> JSONResponse:
    if document not in V2_DOCUMENTS:
        raise HTTPException(status_code=404, detail=f"no such document; try one of: {', '.join(V2_DOCUMENTS)}")
    view = await _view(rt)
    body = render.v2_document(view, _config(rt).page_url, document)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=15", "Access-Control-Allow-Origin": "*"})


# --- subscriptions ----------------------------------------------------------------------------------


async def _form(request: Request) -> dict[str, list[str]]:
    body = await request.body()
    if len(body) > 10_000:
        raise HTTPException(status_code=413, detail="form too large")
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(status_code=400, detail="not a form") from None


def _one(form: dict[str, list[str]], name: str, default: str = "") -> str:
    values = form.get(name) or [default]
    return values[0].strip()


async def _page(rt: "Runtime", title: str, body: str, status: int = 200, form: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> HTMLResponse:
    view = await _view(rt)
    return HTMLResponse(render.render_message(view, render.served_links(), title, body, form), status_code=status,
                        headers=headers)


def _wait_words(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{-(-seconds // 60)} minutes"


def _contact_key(secret: str, channel: SubscriberChannel, contact: str) -> str:
    """The rate-limit key of one address or number: keyed by a MAC, so the rate_limits table
    holds no phone number or address (and a short number cannot be found by hashing guesses)."""
    digest = hmac.new(secret.encode(), f"{channel.value}:{contact}".encode(), hashlib.sha256).hexdigest()
    return f"confirm:{digest[:32]}"


async def _send_confirmation(rt: "Runtime", subscriber_id: int, nonce: str) -> None:
    event = PublicEvent(key=f"subscriber-{subscriber_id}/confirm-{nonce}", kind=PublicEventKind.CONFIRM, at=rt.clock())
    client: Client = rt.client
    try:
        await commands.call(
            client.start_workflow(
                SubscriberFanoutWorkflow.run,
                FanoutInput(event=event, subscriber_ids=[subscriber_id]),
                id=fanout_workflow_id(event.key),
                task_queue=rt.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            ),
            rt.settings.command_timeout_seconds,
            "sending the confirmation",
        )
    except WorkflowAlreadyStartedError:
        pass


@router.post("/status/subscribe", response_class=HTMLResponse, tags=["status page"],
             dependencies=SUBSCRIPTION)
async def subscribe(request: Request, rt: RuntimeDep) -> HTMLResponse:
    settings = rt.settings
    try:
        await rate_limit(request, f"subscribe:{client_ip(request) or 'unknown'}",
                         Bucket(capacity=settings.subscribe_rate_burst, per_minute=settings.subscribe_rate_per_minute),
                         "subscription requests")
    except HTTPException as err:
        wait = int((err.headers or {}).get("Retry-After", "60"))
        return await _page(rt, "Too many requests",
                           f"Too many subscription requests came from your address. Please try again in "
                           f"{_wait_words(wait)}.", 429, headers={"Retry-After": str(wait)})
    form = await _form(request)
    catalog = _config(rt).catalog
    try:
        channel = SubscriberChannel(_one(form, "channel", "email").lower())
    except ValueError:
        return await _page(rt, "Cannot subscribe", "Choose email or text message.", 422)
    try:
        contact = normalise_contact(channel, _one(form, "contact"))
    except ValueError as err:
        return await _page(rt, "Cannot subscribe", f"{str(err).capitalize()}.", 422)
    if channel == SubscriberChannel.SMS and same_number(contact, settings.twilio_from_number):
        return await _page(rt, "Cannot subscribe", "That is the number this status page texts from; give your own.",
                           422)
    wanted = list(dict.fromkeys(c.strip() for c in form.get("components", []) if c.strip()))
    unknown = [c for c in wanted if c not in catalog.by_id()]
    if unknown:
        return await _page(rt, "Cannot subscribe", f"Unknown component: {', '.join(unknown)[:200]}.", 422)
    now = rt.clock()
    confirmations = Bucket(capacity=settings.confirmation_rate_burst,
                           per_minute=settings.confirmation_rate_per_hour / 60)
    contact_key = _contact_key(_config(rt).secret, channel, contact)

    def upsert(session: Session) -> tuple[int, str, bool, bool] | int:
        """(id, nonce, send a confirmation?, already confirmed?), or the seconds to wait when this
        address or number has had its share of confirmation messages."""
        row = session.scalar(
            select(SubscriberRow).where(SubscriberRow.channel == channel.value, SubscriberRow.contact == contact)
        )
        if row is not None and row.status == SubscriberStatus.CONFIRMED.value:
            return row.id, row.nonce, False, True
        if (row is not None and row.status == SubscriberStatus.PENDING.value and now - row.created_at < RESEND_AFTER
                and row.code_attempts < MAX_CODE_ATTEMPTS):  # a code locked by wrong tries is never handed out again
            row.components = wanted
            return row.id, row.nonce, False, False
        wait = store.take(session, contact_key, confirmations, now.timestamp())
        if wait:
            return wait
        nonce = secrets.token_hex(8)
        if row is None:
            try:
                with session.begin_nested():
                    row = SubscriberRow(channel=channel.value, contact=contact, components=wanted,
                                        status=SubscriberStatus.PENDING.value, nonce=nonce, code_attempts=0,
                                        created_at=now)
                    session.add(row)
                    session.flush()
            except IntegrityError:
                return upsert(session)
        else:
            row.status, row.nonce, row.components = SubscriberStatus.PENDING.value, nonce, wanted
            row.code_attempts, row.created_at, row.unsubscribed_at = 0, now, None
        return row.id, nonce, True, False

    outcome = await _db(rt, upsert)
    if isinstance(outcome, int):
        return await _page(rt, "Too many confirmation messages",
                           f"We have sent several confirmation messages to {mask_contact(contact)} recently. "
                           f"Please use the last one, or try again in {_wait_words(outcome)}.", 429,
                           headers={"Retry-After": str(outcome)})
    subscriber_id, nonce, send, confirmed = outcome
    if send:
        await _send_confirmation(rt, subscriber_id, nonce)
    shown = mask_contact(contact)
    if channel == SubscriberChannel.EMAIL or confirmed:
        body = (
            f"If {shown} is not subscribed yet, a message with a confirmation link is on its way. "
            "Nothing else is sent until you confirm."
        )
        return await _page(rt, "Check your inbox" if channel == SubscriberChannel.EMAIL else "Check your phone", body)
    token = sign(_config(rt).secret, VERIFY, subscriber_id, nonce)
    return await _page(
        rt,
        "Enter your confirmation code",
        f"We texted a six-digit code to {shown}. Enter it here to start receiving updates.",
        form={"action": "/status/subscriptions/verify", "hidden": {"token": token}, "code": True, "button": "Confirm"},
    )


@router.get("/status/subscriptions/confirm", response_class=HTMLResponse, tags=["status page"],
            dependencies=SUBSCRIPTION)
async def confirm_form(rt: RuntimeDep, token: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    # A GET never changes anything (mail scanners follow links): one click on the button does.
    if verify(_config(rt).secret, CONFIRM, token) is None:
        return await _page(rt, "Link not valid", "This confirmation link is not valid. Subscribe again for a new one.", 400)
    return await _page(
        rt, "Confirm your subscription", "One more click and you will hear about incidents as they happen.",
        form={"action": "/status/subscriptions/confirm", "hidden": {"token": token}, "button": "Confirm subscription"},
    )


def _confirm(subscriber_id: int, nonce: str, now: datetime) -> Any:
    def run(session: Session) -> str:
        row = session.get(SubscriberRow, subscriber_id)
        if row is None or row.nonce != nonce or row.status == SubscriberStatus.UNSUBSCRIBED.value:
            return "stale"
        if row.status == SubscriberStatus.CONFIRMED.value:
            return "already"
        row.status, row.confirmed_at = SubscriberStatus.CONFIRMED.value, now
        return "confirmed"

    return run


async def _confirmed_page(rt: "Runtime", outcome: str) -> HTMLResponse:
    if outcome == "stale":
        return await _page(rt, "Link expired", "This confirmation is no longer valid. Subscribe again for a new one.", 410)
    return await _page(rt, "You are subscribed", "You will hear about new incidents, each update and the resolution. "
                       "Every message has a link to unsubscribe.")


@router.post("/status/subscriptions/confirm", response_class=HTMLResponse, tags=["status page"],
             dependencies=SUBSCRIPTION)
async def confirm(request: Request, rt: RuntimeDep) -> HTMLResponse:
    form = await _form(request)
    found = verify(_config(rt).secret, CONFIRM, _one(form, "token"))
    if found is None:
        return await _page(rt, "Link not valid", "This confirmation link is not valid. Subscribe again for a new one.", 400)
    return await _confirmed_page(rt, await _db(rt, _confirm(*found, rt.clock())))


@router.post("/status/subscriptions/verify", response_class=HTMLResponse, tags=["status page"],
             dependencies=SUBSCRIPTION)
async def verify_code(request: Request, rt: RuntimeDep) -> HTMLResponse:
    form = await _form(request)
    cfg = _config(rt)
    found = verify(cfg.secret, VERIFY, _one(form, "token"))
    if found is None:
        return await _page(rt, "Cannot confirm", "This form has expired. Subscribe again for a new code.", 400)
    subscriber_id, nonce = found
    code = _one(form, "code")

    def check(session: Session) -> str:
        row = session.get(SubscriberRow, subscriber_id)
        if row is None or row.nonce != nonce:
            return "stale"
        if row.status == SubscriberStatus.CONFIRMED.value:
            return "already"
        if row.code_attempts >= MAX_CODE_ATTEMPTS:
            return "locked"
        if not secrets.compare_digest(code.encode(), sms_code(cfg.secret, subscriber_id, nonce).encode()):
            row.code_attempts += 1
            return "wrong"
        return _confirm(subscriber_id, nonce, rt.clock())(session)

    outcome = await _db(rt, check)
    if outcome == "locked":
        return await _page(rt, "Too many attempts", "Subscribe again to get a new code.", 429)
    if outcome == "wrong":
        return await _page(
            rt, "That code is not right", "Check the text message and try again.", 400,
            form={"action": "/status/subscriptions/verify", "hidden": {"token": _one(form, "token")}, "code": True,
                  "button": "Confirm"},
        )
    return await _confirmed_page(rt, outcome)


@router.get("/status/unsubscribe", response_class=HTMLResponse, tags=["status page"],
            dependencies=SUBSCRIPTION)
async def unsubscribe_form(rt: RuntimeDep, token: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    if verify(_config(rt).secret, UNSUBSCRIBE, token) is None:
        return await _page(rt, "Link not valid", "This unsubscribe link is not valid.", 400)
    return await _page(
        rt, "Unsubscribe", "Stop all status updates to this address or number?",
        form={"action": f"/status/unsubscribe?token={token}", "hidden": {"token": token}, "button": "Unsubscribe"},
    )


@router.post("/status/unsubscribe", response_class=HTMLResponse, tags=["status page"],
             dependencies=SUBSCRIPTION)
async def unsubscribe(
    request: Request, rt: RuntimeDep, token: Annotated[str | None, Query(max_length=200)] = None
) -> HTMLResponse:
    """One click: the form's button, or a mail client's RFC 8058 one-click POST (token in the URL)."""
    form = await _form(request)
    found = verify(_config(rt).secret, UNSUBSCRIBE, token or _one(form, "token"))
    if found is None:
        return await _page(rt, "Link not valid", "This unsubscribe link is not valid.", 400)
    subscriber_id = found[0]
    now = rt.clock()

    def run(session: Session) -> None:
        row = session.get(SubscriberRow, subscriber_id)
        if row is not None and row.status != SubscriberStatus.UNSUBSCRIBED.value:
            row.status, row.unsubscribed_at = SubscriberStatus.UNSUBSCRIBED.value, now

    await _db(rt, run)
    return await _page(rt, "Unsubscribed", "You will not receive any more status updates. You can subscribe again at any time.")


# --- maintenance windows (operators) -------------------------------------------------------------------


class MaintenanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=5000)
    components: list[str] = Field(min_length=1, max_length=50)
    starts_at: datetime
    ends_at: datetime
    created_by: str | None = Field(default=None, min_length=1, max_length=100,
                                   description="always the caller; if given, it must be the caller's user id")

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-12-01T02:00:00Z")
        return value

    @model_validator(mode="after")
    def _order(self) -> "MaintenanceIn":
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > timedelta(days=7):
            raise ValueError("a maintenance window lasts at most 7 days")
        return self


class MaintenanceOut(BaseModel):
    id: int
    title: str
    description: str
    components: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    cancelled_at: datetime | None


def _maintenance_out(row: MaintenanceRow) -> MaintenanceOut:
    return MaintenanceOut(id=row.id, title=row.title, description=row.description, components=row.components,
                          starts_at=row.starts_at, ends_at=row.ends_at, created_by=row.created_by,
                          cancelled_at=row.cancelled_at)


@router.post("/api/maintenance", status_code=201, response_model=MaintenanceOut, tags=["maintenance"])
async def create_maintenance(body: MaintenanceIn, rt: RuntimeDep, caller: Operator) -> Any:
    created_by = acting_as(caller, body.created_by, "created_by")
    catalog = _config(rt).catalog
    ids = []
    for name in body.components:
        cid = catalog.resolve(name)
        if cid is None:
            known = ", ".join(c.id for c in catalog.components)
            raise HTTPException(status_code=422, detail=f"unknown component '{name}' (known: {known})")
        ids.append(cid)
    if body.ends_at <= rt.clock():
        raise HTTPException(status_code=422, detail="this window has already ended")
    now = rt.clock()

    def add(session: Session) -> MaintenanceOut:
        row = MaintenanceRow(title=body.title, description=body.description, components=list(dict.fromkeys(ids)),
                             starts_at=body.starts_at, ends_at=body.ends_at, created_at=now,
                             created_by=created_by)
        session.add(row)
        session.flush()
        return _maintenance_out(row)

    return await _db(rt, add)


@router.get("/api/maintenance", response_model=list[MaintenanceOut], tags=["maintenance"],
            dependencies=[Depends(require(Role.VIEWER))])
async def list_maintenance(rt: RuntimeDep) -> Any:
    def load(session: Session) -> list[MaintenanceOut]:
        rows = session.scalars(select(MaintenanceRow).order_by(MaintenanceRow.starts_at.desc()).limit(200))
        return [_maintenance_out(r) for r in rows]

    return await _db(rt, load)


@router.delete("/api/maintenance/{window_id}", response_model=MaintenanceOut, tags=["maintenance"])
async def cancel_maintenance(window_id: Annotated[int, path_id("the maintenance window's id")], rt: RuntimeDep, caller: Operator) -> Any:
    now = rt.clock()

    def cancel(session: Session) -> MaintenanceOut | None:
        row = session.get(MaintenanceRow, window_id)
        if row is None:
            return None
        if row.cancelled_at is None:
            row.cancelled_at = now
        return _maintenance_out(row)

    out = await _db(rt, cancel)
    if out is None:
        raise HTTPException(status_code=404, detail=f"maintenance window {window_id} not found")
    return out


async def hold_for_maintenance(
    rt: "Runtime", payload: alerts.AlertmanagerPayload
) -> tuple[alerts.AlertmanagerPayload | None, int]:
    """Firing alerts for a component under maintenance are recorded and do not page.

    Returns the payload without them (None when nothing is left) and how many
    were held. Resolved alerts and alerts of other components pass unchanged.
    """
    if rt.statuspage is None:
        return payload, 0
    catalog = rt.statuspage.catalog
    now = rt.clock()

    def windows(session: Session) -> list[Maintenance]:
        rows = session.scalars(
            select(MaintenanceRow).where(
                MaintenanceRow.cancelled_at.is_(None), MaintenanceRow.starts_at <= now, MaintenanceRow.ends_at > now
            )
        )
        return [Maintenance(id=r.id, components=tuple(r.components), start=r.starts_at, end=r.ends_at) for r in rows]

    active = await _db(rt, windows)
    if not active:
        return payload, 0
    in_maintenance = components_in_maintenance(catalog, active, now)
    keep, held = [], []
    for alert, event in zip(payload.alerts, alerts.to_events(payload)):
        name = alert.labels.get("component") or payload.commonLabels.get("component", "")
        cid = catalog.resolve(name) if name else None
        if alert.status == "firing" and cid in in_maintenance:
            window = next(w for w in active if cid in catalog.resolve_all(w.components))
            held.append({
                "key": f"{event.fingerprint}|{event.starts_at.isoformat() if event.starts_at else ''}"[:300],
                "fingerprint": event.fingerprint, "name": event.name, "summary": event.summary[:2000],
                "component": cid, "maintenance_id": window.id, "group_key": payload.groupKey,
                "starts_at": event.starts_at, "received_at": now,
            })
        else:
            keep.append(alert)
    if held:
        await _db(rt, lambda s: insert_ignoring_duplicates(s, HeldAlertRow, held))
    if not keep:
        return None, len(held)
    return payload.model_copy(update={"alerts": keep}), len(held)


# --- what an incident does to its components (operators) ---------------------------------------------


class ComponentStateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    component: str = Field(min_length=1, max_length=100)
    state: ComponentState
    by: str | None = Field(default=None, min_length=1, max_length=100,
                           description="always the caller; if given, it must be the caller's user id")


@router.post("/api/incidents/{incident_id}/components", tags=["commands"])
async def set_component_state(incident_id: Annotated[int, path_id("the incident number, e.g. 42")], body: ComponentStateIn, rt: RuntimeDep, caller: Operator) -> Any:
    """Override the state the incident's severity gave a component (or add one)."""
    by = acting_as(caller, body.by, "by")
    catalog = _config(rt).catalog
    cid = catalog.resolve(body.component)
    if cid is None:
        known = ", ".join(c.id for c in catalog.components)
        raise HTTPException(status_code=422, detail=f"unknown component '{body.component}' (known: {known})")

    def own_name(session: Session) -> str:
        # Use the incident's own spelling of the component, so the edit replaces its impact.
        row = session.get(IncidentRow, incident_id)
        names = [n for n in (row.components if row is not None else []) if catalog.resolve(n) == cid]
        return names[0] if names else cid

    arg = ComponentStateInput(component=await _db(rt, own_name), state=body.state, by=by)
    try:
        result = await commands.update(
            rt.client, incident_id, IncidentWorkflow.set_component_state, arg, rt.settings.command_timeout_seconds
        )
    except commands.IncidentGone:
        def stored(session: Session) -> str | None:
            row = session.get(IncidentRow, incident_id)
            return row.status if row is not None else None

        status = await _db(rt, stored)
        if status is None:
            raise HTTPException(status_code=404, detail=f"incident #{incident_id} not found") from None
        raise HTTPException(
            status_code=409,
            detail=f"incident #{incident_id} is {status}; it takes no more commands",
        ) from None
    return {"incident_id": result.number, "status": result.status.value, "message": result.message}
