"""Customer reports: the status page's "report a problem" form and API, and the triage list.

A report is plain text (markup is taken out, see ``models.detection.plain_text``),
bounded in length, and rate-limited per client address. Reports land in a
triage list; a responder attaches one to an open incident or declares an
incident from it, both through the alert intake (a report is an alert with
source ``reports``). Enough reports for one component within the configured
window raise an alert through the same intake, once per burst.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warroom.api import commands
from warroom.api import oncall as oncall_routes
from warroom.api.auth import Responder, client_ip, public, rate_limit, require
from warroom.models.access import Bucket, Role
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
from warroom.models.incident import AlertBatch, AlertBatchResult
from warroom.models.severity import Severity
from warroom.models.tables import CustomerReportRow
from warroom.statuspage import render
from warroom.workflows import IncidentWorkflow

if TYPE_CHECKING:
    from warroom.api.app import Runtime

router = APIRouter()
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


@router.post("/status/report", response_class=HTMLResponse, tags=["status page"], dependencies=FORM)
async def report_form(request: Request, rt: RuntimeDep) -> HTMLResponse:
    raw = await request.body()
    if len(raw) > 3 * REPORT_MAX_TEXT + 1000:
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
    except HTTPException as err:
        return await _message(rt, "Cannot send the report", str(err.detail), err.status_code)
    return await _message(rt, "Thank you", f"We received your report (#{report_id}). "
                                           "The on-call engineers read every report.", 201)


async def _message(rt: "Runtime", title: str, body: str, status: int) -> HTMLResponse:
    from warroom.api.statuspage import _view

    view = await _view(rt)
    return HTMLResponse(render.render_message(view, render.served_links(), title, body), status_code=status)


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

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        return severity_word(value).value


async def _load(rt: "Runtime", report_id: int) -> ReportOut | None:
    def load(session: Session) -> ReportOut | None:
        row = session.get(CustomerReportRow, report_id)
        return _out(row) if row is not None else None

    return await _db(rt, load)


async def _report(rt: "Runtime", report_id: int) -> ReportOut:
    row = await _load(rt, report_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no customer report #{report_id}")
    if row.status != "new":
        where = f" (incident #{row.incident_id})" if row.incident_id else ""
        raise HTTPException(status_code=409, detail=f"report #{report_id} is already {row.status}{where}")
    return row


async def _mark(rt: "Runtime", report_id: int, status: str, number: int, by: str) -> None:
    now = rt.clock()

    def write(session: Session) -> None:
        row = session.get(CustomerReportRow, report_id)
        assert row is not None
        row.status, row.incident_number, row.handled_by, row.handled_at = status, number, by, now

    await _db(rt, write)


@router.post("/api/reports/{report_id}/attach", response_model=ReportOut, tags=["reports"])
async def attach(report_id: ReportId, body: AttachIn, rt: RuntimeDep, caller: Responder) -> Any:
    """Attach a report to an open incident: it joins the incident's alerts and timeline."""
    row = await _report(rt, report_id)
    event = report_event(row.id, row.component, row.text, None, row.received_at)
    handle = rt.client.get_workflow_handle(incident_workflow_id(body.incident_id))
    try:
        result: AlertBatchResult = await commands.call(
            handle.execute_update(IncidentWorkflow.receive_alerts, AlertBatch(group_key=f"report-{row.id}",
                                                                              alerts=[event])),
            rt.settings.command_timeout_seconds, "attaching the report")
    except commands.IncidentGone:
        raise HTTPException(status_code=404, detail=f"incident #{body.incident_id} not found") from None
    if not result.accepted:
        raise HTTPException(status_code=409, detail=f"incident #{body.incident_id} is resolved; declare a new one")
    await _mark(rt, report_id, "attached", body.incident_id, caller.user)
    return await _load(rt, report_id)


@router.post("/api/reports/{report_id}/declare", response_model=ReportOut, tags=["reports"])
async def declare(report_id: ReportId, body: DeclareFromReportIn, rt: RuntimeDep, caller: Responder) -> Any:
    """Declare an incident from a report, through the alert rules and grouping (an open incident
    for the same component within the grouping window is joined instead)."""
    row = await _report(rt, report_id)
    intake = rt.intake
    assert intake is not None
    event = report_event(row.id, row.component, row.text, Severity(body.severity), row.received_at)
    policy = await oncall_routes.current_policy(rt)
    outcome: IngestOutcome = await commands.call(
        intake.ingest(rt.client, rt.settings.task_queue, policy, [event], "reports", f"report-{row.id}"),
        rt.settings.command_timeout_seconds * 3, "declaring the incident")
    if outcome.incident_id is None:
        raise HTTPException(status_code=409, detail=f"the alert rules {outcome.action} this report; nothing declared")
    await _mark(rt, report_id, "declared" if outcome.action == "declared" else "attached", outcome.incident_id,
                caller.user)
    return await _load(rt, report_id)


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=300, description="for the audit log")


@router.post("/api/reports/{report_id}/dismiss", response_model=ReportOut, tags=["reports"])
async def dismiss(report_id: ReportId, rt: RuntimeDep, caller: Responder, body: DismissIn | None = None) -> Any:
    """Take a report off the triage list without an incident (spam, a question, already known)."""
    await _report(rt, report_id)
    now = rt.clock()

    def write(session: Session) -> None:
        row = session.get(CustomerReportRow, report_id)
        assert row is not None
        row.status, row.handled_by, row.handled_at = "dismissed", caller.user, now

    await _db(rt, write)
    return await _load(rt, report_id)
