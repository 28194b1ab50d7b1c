"""Customer reports: the status page's "report a problem" form and API, and the triage list.

A report is plain text (markup is taken out, see ``models.detection.plain_text``),
bounded in length, and rate-limited per client address. Reports land in a
triage list; a responder attaches one to an open incident or declares an
incident from it, both through the alert intake (a report is an alert with
source ``reports``). Enough reports for one component within the configured
window raise an alert through the same intake, once per burst.

Triage happens through the JSON API (``/api/reports...``) or the web page ``/reports``,
whose forms call the same command functions (``attach_report``, ``declare_from_report``,
``dismiss_report``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from warroom.api import commands
from warroom.api import oncall as oncall_routes
from warroom.api.auth import (
    CSRF_FIELD,
    MAX_SIGNED_IN_FORM,
    Responder,
    client_ip,
    note_for_audit,
    page,
    public,
    rate_limit,
    read_form,
    require,
)
from warroom.auth import store
from warroom.models.access import Bucket, Caller, Role
from warroom.models.detection import (
    REPORT_MAX_CONTACT,
    REPORT_MAX_TEXT,
    IngestOutcome,
    plain_text,
    report_alert,
    report_event,
    severity_word,
    surge_crossed,
)
from warroom.models.ids import incident_workflow_id
from warroom.models.incident import AlertBatch, AlertBatchResult, AlertEvent, IncidentStatus
from warroom.models.paging import mask_contacts_in
from warroom.models.severity import Severity
from warroom.models.tables import CustomerReportRow, IncidentRow
from warroom.statuspage import render
from warroom.workflows import IncidentWorkflow

if TYPE_CHECKING:
    from warroom.api.app import Runtime

router = APIRouter()
TEMPLATES = Jinja2Templates(directory=str(FilePath(__file__).parent / "templates"))
MAX_ID = 2**31 - 1
FORM = [Depends(public("customers report problems without an account; rate-limited per address", audited=True))]
ReportId = Annotated[int, Path(ge=1, le=MAX_ID)]


def get_runtime(request: Request) -> "Runtime":
    return request.app.state.runtime


RuntimeDep = Annotated["Runtime", Depends(get_runtime)]


def _db(rt: "Runtime", fn: Any) -> Any:
    def run() -> Any:
        with Session(rt.engine) as session, session.begin():
            return fn(session)

    return run_in_threadpool(run)


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=REPORT_MAX_TEXT)
    component: str | None = Field(default=None, max_length=100)
    contact: str | None = Field(default=None, max_length=REPORT_MAX_CONTACT)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        cleaned = plain_text(value)
        if not cleaned:
            raise ValueError("describe the problem in plain text (markup is removed)")
        return cleaned

    @field_validator("contact")
    @classmethod
    def _contact(cls, value: str | None) -> str | None:
        cleaned = plain_text(value or "")
        return cleaned or None


class ReportOut(BaseModel):
    id: int
    received_at: datetime
    component: str | None
    text: str
    contact: str | None
    status: str
    incident_id: int | None
    handled_by: str | None


class ReportReceipt(BaseModel):
    id: int
    message: str


def _out(row: CustomerReportRow) -> ReportOut:
    return ReportOut(id=row.id, received_at=row.received_at, component=row.component, text=row.text,
                     contact=row.contact, status=row.status, incident_id=row.incident_number,
                     handled_by=row.handled_by)


async def _receive(request: Request, rt: "Runtime", body: ReportIn) -> int:
    settings = rt.settings
    ip = client_ip(request) or "unknown"
    await rate_limit(request, f"report:{ip}", Bucket(capacity=settings.report_rate_burst,
                                                     per_minute=settings.report_rate_per_minute), "problem reports")
    component = None
    if body.component:
        catalog = rt.statuspage.catalog if rt.statuspage is not None else None
        component = catalog.resolve(body.component) if catalog is not None else body.component
        if component is None:
            raise HTTPException(status_code=422, detail=f"unknown component '{body.component[:100]}'")
    intake = rt.intake
    assert intake is not None
    rules = intake.config.reports
    now = rt.clock()
    client = hashlib.sha256(ip.encode()).hexdigest()[:16]

    def add(session: Session) -> tuple[int, int, datetime | None]:
        row = CustomerReportRow(received_at=now, component=component, text=body.text, contact=body.contact,
                                client=client, status="new")
        session.add(row)
        session.flush()
        if component is None:
            return row.id, 0, None
        since = now - rules.within
        count, first = session.execute(
            select(func.count(), func.min(CustomerReportRow.received_at)).where(
                CustomerReportRow.component == component, CustomerReportRow.received_at > since,
                CustomerReportRow.received_at <= now)
        ).one()
        return row.id, int(count), first

    report_id, count, first = await _db(rt, add)
    if component is not None and first is not None and surge_crossed(count, rules.count):
        alert = report_alert(component, count, rules.within, rules.severity, first)
        policy = await oncall_routes.current_policy(rt)
        delivery = await intake.record("reports", None, {"component": component, "reports": count})
        outcome: IngestOutcome = await commands.call(
            intake.ingest(rt.client, settings.task_queue, policy, [alert], "reports", alert.dedup_key or component),
            settings.command_timeout_seconds * 3, "raising the alert for customer reports")
        await intake.finish(delivery, outcome)
    return report_id


@router.post("/api/reports", response_model=ReportReceipt, status_code=201, tags=["reports"], dependencies=FORM)
async def report_api(request: Request, body: ReportIn, rt: RuntimeDep) -> Any:
    """Report a problem (no account needed): ``text`` (plain text, at most 2000 characters),
    optionally ``component`` and ``contact``."""
    report_id = await _receive(request, rt, body)
    return ReportReceipt(id=report_id, message="Thank you: the on-call engineers will read your report.")


FORM_MAX_BYTES = 12 * (REPORT_MAX_TEXT + REPORT_MAX_CONTACT + 100) + 1000
"""A browser percent-encodes each character of the form: up to 12 bytes for one outside the
Basic Multilingual Plane, 9 for Chinese or Japanese, 6 for an accented letter. A report at its
character limits in any script fits; the text's own limit is then checked in characters."""


@router.post("/status/report", response_class=HTMLResponse, tags=["status page"], dependencies=FORM)
async def report_form(request: Request, rt: RuntimeDep) -> HTMLResponse:
    raw = await request.body()
    if len(raw) > FORM_MAX_BYTES:
        return await _message(rt, "Report too long", f"Please keep it under {REPORT_MAX_TEXT} characters.", 413)
    try:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), max_num_fields=10).items()}
        body = ReportIn(text=form.get("text", ""), component=form.get("component") or None,
                        contact=form.get("contact") or None)
    except (UnicodeDecodeError, ValueError) as err:
        reason = "describe the problem in plain text, at most 2000 characters"
        if hasattr(err, "errors"):
            reason = "; ".join(str(e.get("msg", "")) for e in err.errors())[:300]  # type: ignore[union-attr]
        return await _message(rt, "Cannot send the report", reason, 422)
    try:
        report_id = await _receive(request, rt, body)
    except HTTPException as err:  # the rate limit's Retry-After goes with the page
        return await _message(rt, "Cannot send the report", str(err.detail), err.status_code, err.headers)
    return await _message(rt, "Thank you", f"We received your report (#{report_id}). "
                                           "The on-call engineers read every report.", 201)


async def _message(rt: "Runtime", title: str, body: str, status: int,
                   headers: dict[str, str] | None = None) -> HTMLResponse:
    from warroom.api.statuspage import _view

    view = await _view(rt)
    return HTMLResponse(render.render_message(view, render.served_links(), title, body), status_code=status,
                        headers=headers)


# --- triage ------------------------------------------------------------------------------------------------


@router.get("/api/reports", response_model=list[ReportOut], tags=["reports"],
            dependencies=[Depends(require(Role.RESPONDER))])
async def triage(
    rt: RuntimeDep,
    status: Annotated[str | None, Query(pattern="^(new|attached|declared|dismissed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Customer reports, newest first (responders and up: reports may carry a customer's contact)."""
    def load(session: Session) -> list[ReportOut]:
        query = select(CustomerReportRow).order_by(CustomerReportRow.id.desc()).limit(limit)
        if status:
            query = query.where(CustomerReportRow.status == status)
        return [_out(r) for r in session.scalars(query)]

    return await _db(rt, load)


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    incident_id: int = Field(ge=1, le=MAX_ID)


class DeclareFromReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    severity: str = Field(default="SEV-3", max_length=20)
    title: str | None = Field(default=None, max_length=300,
                              description="the incident's title; left out: 'Customer report #N: ' and the "
                                          "report's first line")

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        return severity_word(value).value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("give the incident a title")
        return value.strip()


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=300, description="for the audit log")


async def _load(rt: "Runtime", report_id: int) -> ReportOut | None:
    def load(session: Session) -> ReportOut | None:
        row = session.get(CustomerReportRow, report_id)
        return _out(row) if row is not None else None

    return await _db(rt, load)


async def _report(rt: "Runtime", report_id: int) -> ReportOut:
    row = await _load(rt, report_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no customer report #{report_id}")
    if row.status == HANDLING:
        raise HTTPException(status_code=409, detail=f"report #{report_id} is being handled by {row.handled_by} "
                                                    "right now; reload the list in a moment")
    if row.status != "new":
        where = f" (incident #{row.incident_id})" if row.incident_id else ""
        raise HTTPException(status_code=409, detail=f"report #{report_id} is already {row.status}{where}")
    return row


HANDLING = "handling"
CLAIM_LASTS = timedelta(minutes=2)
"""How long a command holds a report; a claim older than this (its process died) lapses."""


@asynccontextmanager
async def _claimed(rt: "Runtime", report_id: int, by: str) -> AsyncIterator[ReportOut]:
    """Hold the report for one command (attach, declare or dismiss), so two responders, or
    one double click, cannot both act on it: the second is told who has it. A command that
    fails gives the report back to the list."""
    now = rt.clock()
    mine = and_(CustomerReportRow.id == report_id, CustomerReportRow.status == HANDLING,
                CustomerReportRow.handled_by == by, CustomerReportRow.handled_at == now)

    def claim(session: Session) -> bool:
        free = or_(CustomerReportRow.status == "new",
                   and_(CustomerReportRow.status == HANDLING, CustomerReportRow.handled_at < now - CLAIM_LASTS))
        done = session.execute(update(CustomerReportRow).where(CustomerReportRow.id == report_id, free)
                               .values(status=HANDLING, handled_by=by, handled_at=now))
        return bool(done.rowcount)  # type: ignore[attr-defined]

    def release(session: Session) -> None:
        session.execute(update(CustomerReportRow).where(mine).values(status="new", handled_by=None, handled_at=None))

    row = await _report(rt, report_id)  # 404, or 409 with what became of it
    if not await _db(rt, claim):
        await _report(rt, report_id)
        raise HTTPException(status_code=409, detail=f"report #{report_id} was just handled; reload the list")
    finished = False
    try:
        yield row
        finished = True
    finally:
        if not finished:
            await _db(rt, release)


async def _mark(rt: "Runtime", report_id: int, status: str, number: int, by: str) -> None:
    now = rt.clock()

    def write(session: Session) -> None:
        row = session.get(CustomerReportRow, report_id)
        assert row is not None
        row.status, row.incident_number, row.handled_by, row.handled_at = status, number, by, now

    await _db(rt, write)


async def _reloaded(rt: "Runtime", report_id: int) -> ReportOut:
    """The report as a command left it."""
    out = await _load(rt, report_id)
    assert out is not None
    return out


def _event(row: ReportOut, severity: Severity | None, title: str | None = None) -> AlertEvent:
    event = report_event(row.id, row.component, row.text, severity, row.received_at)
    return event.model_copy(update={"summary": mask_contacts_in(title)}) if title else event


def _audit_body(request: Request, body: BaseModel) -> None:
    """Record the JSON body a command amounts to (for a form, what its fields made), with any phone
    number or address in a title masked: the title starts as a customer's words, and the audit
    log is kept for good."""
    data = body.model_dump(exclude_none=True)
    if isinstance(data.get("title"), str):
        data["title"] = mask_contacts_in(data["title"])
    note_for_audit(request, detail=store.compact(store.redact(data)))


# The commands: the JSON routes and the triage page's forms both call these.


async def attach_report(rt: "Runtime", caller: Caller, report_id: int, body: AttachIn) -> ReportOut:
    """Attach a report to an open incident: it joins the incident's alerts and timeline."""
    async with _claimed(rt, report_id, caller.user) as row:
        await _attach(rt, caller, row, body)
    return await _reloaded(rt, report_id)


async def _attach(rt: "Runtime", caller: Caller, row: ReportOut, body: AttachIn) -> None:
    handle = rt.client.get_workflow_handle(incident_workflow_id(body.incident_id))
    try:
        result: AlertBatchResult = await commands.call(
            handle.execute_update(IncidentWorkflow.receive_alerts, AlertBatch(group_key=f"report-{row.id}",
                                                                              alerts=[_event(row, None)])),
            rt.settings.command_timeout_seconds, "attaching the report")
    except commands.IncidentGone:
        known = await _db(rt, lambda session: session.get(IncidentRow, body.incident_id) is not None)
        if known:  # its workflow has finished: closed after its postmortem, or needing none
            raise HTTPException(status_code=409, detail=f"incident #{body.incident_id} is closed; "
                                                        "declare a new one") from None
        raise HTTPException(status_code=404, detail=f"incident #{body.incident_id} not found") from None
    if not result.accepted:
        raise HTTPException(status_code=409, detail=f"incident #{body.incident_id} is resolved; declare a new one")
    await _mark(rt, row.id, "attached", body.incident_id, caller.user)


async def declare_from_report(rt: "Runtime", caller: Caller, report_id: int, body: DeclareFromReportIn) -> ReportOut:
    """Declare an incident from a report, through the alert rules and grouping. The group key is
    the report's, so sending it twice declares once."""
    intake = rt.intake
    assert intake is not None
    async with _claimed(rt, report_id, caller.user) as row:
        event = _event(row, Severity(body.severity), body.title)
        policy = await oncall_routes.current_policy(rt)
        outcome: IngestOutcome = await commands.call(
            intake.ingest(rt.client, rt.settings.task_queue, policy, [event], "reports", f"report-{row.id}"),
            rt.settings.command_timeout_seconds * 3, "declaring the incident")
        if outcome.incident_id is None:
            raise HTTPException(status_code=409,
                                detail=f"the alert rules {outcome.action} this report; nothing declared")
        await _mark(rt, report_id, "declared" if outcome.action == "declared" else "attached", outcome.incident_id,
                    caller.user)
    return await _reloaded(rt, report_id)


async def dismiss_report(rt: "Runtime", caller: Caller, report_id: int, body: DismissIn) -> ReportOut:
    """Take a report off the triage list without an incident (the reason goes to the audit log)."""
    now = rt.clock()

    def write(session: Session) -> None:
        row = session.get(CustomerReportRow, report_id)
        assert row is not None
        row.status, row.handled_by, row.handled_at = "dismissed", caller.user, now

    async with _claimed(rt, report_id, caller.user):
        await _db(rt, write)
    return await _reloaded(rt, report_id)


@router.post("/api/reports/{report_id}/attach", response_model=ReportOut, tags=["reports"])
async def attach(report_id: ReportId, body: AttachIn, rt: RuntimeDep, caller: Responder) -> Any:
    """Attach a report to an open incident: it joins the incident's alerts and timeline."""
    return await attach_report(rt, caller, report_id, body)


@router.post("/api/reports/{report_id}/declare", response_model=ReportOut, tags=["reports"])
async def declare(report_id: ReportId, body: DeclareFromReportIn, request: Request, rt: RuntimeDep,
                  caller: Responder) -> Any:
    """Declare an incident from a report, through the alert rules and grouping (an open incident
    for the same component within the grouping window is joined instead). ``title`` is optional."""
    _audit_body(request, body)
    return await declare_from_report(rt, caller, report_id, body)


@router.post("/api/reports/{report_id}/dismiss", response_model=ReportOut, tags=["reports"])
async def dismiss(report_id: ReportId, rt: RuntimeDep, caller: Responder, body: DismissIn | None = None) -> Any:
    """Take a report off the triage list without an incident (spam, a question, already known)."""
    return await dismiss_report(rt, caller, report_id, body or DismissIn())


# --- the triage page ---------------------------------------------------------------------------------------
# ``/reports``: the reports waiting, newest first, with a form for each command, and the ones handled
# lately. Every form calls the command function its JSON route calls, under the same route name (the
# audit log's action); a refusal is the page again with the reason and the API's status code, an accepted
# command redirects (303) back with a notice. Viewers may read the page, but the API shows reports to
# responders only, since they carry customers' contacts: a viewer sees no contact and the text with any
# phone number or address masked.

PAGE_LIMIT = 100
RECENT = 20
OPEN = (IncidentStatus.TRIGGERED.value, IncidentStatus.ACKNOWLEDGED.value)
SEVERITIES = [s.value for s in Severity]


def _shown(row: CustomerReportRow, full: bool) -> dict[str, Any]:
    text = row.text if full else mask_contacts_in(row.text)
    return {"id": row.id, "received_at": row.received_at, "component": row.component, "text": text,
            "contact": row.contact if full else None, "status": row.status, "incident_id": row.incident_number,
            "handled_by": row.handled_by, "handled_at": row.handled_at,
            "title": _event(_out(row), None).summary}


def _triage_lists(session: Session, full: bool) -> dict[str, Any]:
    waiting = session.scalars(select(CustomerReportRow).where(CustomerReportRow.status == "new")
                              .order_by(CustomerReportRow.id.desc()).limit(PAGE_LIMIT))
    count = session.scalar(select(func.count()).select_from(CustomerReportRow)
                           .where(CustomerReportRow.status == "new"))
    recent = session.scalars(select(CustomerReportRow).where(CustomerReportRow.status != "new")
                             .order_by(CustomerReportRow.handled_at.desc(), CustomerReportRow.id.desc())
                             .limit(RECENT))
    incidents = session.execute(select(IncidentRow.number, IncidentRow.title).where(IncidentRow.status.in_(OPEN))
                                .order_by(IncidentRow.number.desc()).limit(200))
    return {"waiting": [_shown(r, full) for r in waiting], "waiting_count": int(count or 0),
            "recent": [_shown(r, full) for r in recent],
            "incidents": [{"number": n, "title": t} for n, t in incidents]}


async def _triage_page(request: Request, rt: "Runtime", caller: Caller, status: int = 200, error: str | None = None,
                       notice: str | None = None, failed: int | None = None,
                       form: dict[str, str] | None = None) -> HTMLResponse:
    full = caller.role.at_least(Role.RESPONDER)
    lists = await _db(rt, lambda s: _triage_lists(s, full))
    return TEMPLATES.TemplateResponse(request, "reports_triage.html", {
        "caller": caller, "can_act": full, "severities": SEVERITIES, "default_severity": "SEV-3",
        "error": error, "notice": notice, "failed": failed, "form": form or {}, "limit": PAGE_LIMIT, **lists,
    }, status_code=status)


def _notice(row: ReportOut | None, done: str) -> str | None:
    if row is None or row.status == "new":
        return None
    if row.status == "dismissed":
        return f"Report #{row.id} dismissed."
    if done == "declared" and row.status == "declared":
        return f"Declared incident #{row.incident_id} from report #{row.id}; the on-call people are being paged."
    if done == "declared":
        return (f"Report #{row.id} joined the open incident #{row.incident_id} (the alert rules and grouping sent "
                "it there) instead of declaring a new one.")
    return f"Report #{row.id} attached to incident #{row.incident_id}."


@router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
async def triage_page(request: Request, rt: RuntimeDep, caller: Annotated[Caller, Depends(page(Role.VIEWER))],
                      attached: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                      declared: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                      dismissed: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> HTMLResponse:
    notice = None
    for done, report_id in (("attached", attached), ("declared", declared), ("dismissed", dismissed)):
        if report_id is not None:
            notice = _notice(await _load(rt, report_id), done)
    return await _triage_page(request, rt, caller, notice=notice)


async def _read_triage_form(request: Request) -> dict[str, str]:
    return {k: v for k, v in (await read_form(request, MAX_SIGNED_IN_FORM)).items() if k != CSRF_FIELD}


async def _run_form(request: Request, rt: "Runtime", caller: Caller, report_id: int, done: str,
                    command: Callable[[dict[str, str]], Awaitable[ReportOut]]) -> Response:
    """Read the form, run the command; on success 303 back with a notice, on a refusal the page again."""
    form = await _read_triage_form(request)
    try:
        try:
            out = await command(form)
        except ValidationError as err:
            raise HTTPException(status_code=422, detail="; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in err.errors())) from None
    except HTTPException as err:
        note_for_audit(request, reason=str(err.detail))
        return await _triage_page(request, rt, caller, err.status_code, error=str(err.detail), failed=report_id,
                                  form=form)
    notice = _notice(out, done) or ""
    note_for_audit(request, reason=notice, incident=out.incident_id)
    return RedirectResponse(f"/reports?{done}={report_id}", status_code=303)


Actor = Annotated[Caller, Depends(page(Role.RESPONDER))]


@router.post("/reports/{report_id}/attach", response_class=HTMLResponse, include_in_schema=False, name="attach")
async def attach_form(report_id: ReportId, request: Request, rt: RuntimeDep, caller: Actor) -> Response:
    async def command(form: dict[str, str]) -> ReportOut:
        body = AttachIn.model_validate({"incident_id": form["incident_id"]} if form.get("incident_id") else {})
        _audit_body(request, body)
        return await attach_report(rt, caller, report_id, body)

    return await _run_form(request, rt, caller, report_id, "attached", command)


@router.post("/reports/{report_id}/declare", response_class=HTMLResponse, include_in_schema=False, name="declare")
async def declare_form(report_id: ReportId, request: Request, rt: RuntimeDep, caller: Actor) -> Response:
    async def command(form: dict[str, str]) -> ReportOut:
        data = {"title": form.get("title", ""), **({"severity": form["severity"]} if form.get("severity") else {})}
        note_for_audit(request, detail=store.compact({"title": mask_contacts_in(data["title"][:300])}))
        body = DeclareFromReportIn.model_validate(data)
        _audit_body(request, body)
        return await declare_from_report(rt, caller, report_id, body)

    return await _run_form(request, rt, caller, report_id, "declared", command)


@router.post("/reports/{report_id}/dismiss", response_class=HTMLResponse, include_in_schema=False, name="dismiss")
async def dismiss_form(report_id: ReportId, request: Request, rt: RuntimeDep, caller: Actor) -> Response:
    async def command(form: dict[str, str]) -> ReportOut:
        body = DismissIn.model_validate({"reason": form.get("reason", "").strip()})
        _audit_body(request, body)
        return await dismiss_report(rt, caller, report_id, body)

    return await _run_form(request, rt, caller, report_id, "dismissed", command)
