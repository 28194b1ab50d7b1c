"""The responder console: server-rendered pages for the people working an incident.

- ``GET /console``: open incidents with their deadlines counting down (most urgent first),
  postmortems due, and a form to declare a new incident.
- ``GET /console/incidents/{incident_id}``: one incident: deadlines, roles, pages and acks,
  status updates, runbook runs, the timeline, a link to its workflow in the Temporal UI, and
  forms for every command the caller's role allows.
- ``POST /console/...``: one route per form, named like the JSON route it mirrors (the audit
  log's ``action``; its path tells the console from the API). Each builds the JSON API's request body from the
  form and calls the very function behind the JSON route (``warroom.api.app`` and
  ``warroom.api.runbooks``), so validation, authorisation, the workflow's validators and the
  audit log are the same. A refusal is shown on the page with its reason and the status code
  the API would have answered; an accepted command redirects back (post/redirect/get) with a
  one-time notice.

Signing in, the session cookie and the CSRF field (``caller.csrf``) are those of
``warroom.api.auth``. The pages work without JavaScript; a small inline script only makes
the countdowns tick and reloads an untouched page every half minute.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.api import app as api
from warroom.api import commands
from warroom.api import oncall as oncall_routes
from warroom.api import runbooks as runbook_routes
from warroom.api.auth import CSRF_FIELD, note_for_audit, page, read_form
from warroom.api.schemas import AckIn, DeclareIn, EscalateIn, ResolveIn, RoleIn, SeverityIn, StatusUpdateIn
from warroom.models.access import Caller, Role
from warroom.models.console import countdowns, stored_deadlines, urgency
from warroom.models.ids import incident_workflow_id
from warroom.models.incident import IncidentState, IncidentStatus, PublicPhase, Role as IncidentRole
from warroom.models.severity import Severity
from warroom.models.tables import IncidentRow, NotificationRow

router = APIRouter(tags=["console"], include_in_schema=False)
FLASH_COOKIE = "warroom_flash"
REFRESH_SECONDS = 30
OPEN = (IncidentStatus.TRIGGERED.value, IncidentStatus.ACKNOWLEDGED.value)
IncidentId = api.IncidentId

Reader = Annotated[Caller, Depends(page(Role.VIEWER))]
Actor = Annotated[Caller, Depends(page(Role.RESPONDER))]
Approver = Annotated[Caller, Depends(page(Role.OPERATOR))]
"""Every console command needs the role its JSON route needs: the responder role, the operator
role to approve a runbook step; what more a command needs (an operator for a destructive
runbook) the shared command function decides."""


def install(app: FastAPI) -> None:
    api.TEMPLATES.env.filters["utc"] = utc_text
    app.include_router(router)


def utc_text(value: datetime | None) -> str:
    """An instant as people on call read it: ``2026-12-03 02:41:07 UTC``."""
    if value is None:
        return ""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- reading ---------------------------------------------------------------------------------


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    rt: api.Runtime = request.app.state.runtime
    now = rt.clock()
    context.setdefault("refresh", REFRESH_SECONDS if request.method == "GET" else None)
    response = api.TEMPLATES.TemplateResponse(
        request, template, {"now": now, "now_ms": int(now.timestamp() * 1000), "csrf_field": CSRF_FIELD, **context},
        status_code=status,
    )
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path="/console")
    return response


def _flash(request: Request) -> str | None:
    value = request.cookies.get(FLASH_COOKIE)
    return unquote(value)[:500] if value else None


async def _open_incidents(rt: api.Runtime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Open incidents and postmortems due, from the read model, most urgent first. The
    deadlines follow the policy in force (the one new incidents are declared with)."""
    now = rt.clock()
    policy = await oncall_routes.current_policy(rt)

    def load(session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = session.scalars(
            select(IncidentRow).where(
                IncidentRow.status.in_(OPEN)
                | ((IncidentRow.status == IncidentStatus.RESOLVED.value) & IncidentRow.postmortem_deadline.is_not(None)
                   & IncidentRow.postmortem_submitted_at.is_(None))
            )
        )
        open_rows, postmortems = [], []
        for row in rows:
            state = IncidentState.model_validate(row.state)
            due = countdowns(stored_deadlines(state, policy), now)
            item = {"state": state, "deadlines": due, "ic": state.roles.get(IncidentRole.INCIDENT_COMMANDER)}
            key = urgency(due, state.severity.rank, state.declared_at)
            (open_rows if row.status in OPEN else postmortems).append((key, item))
        return [i for _, i in sorted(open_rows, key=lambda p: p[0])], [i for _, i in sorted(postmortems, key=lambda p: p[0])]

    return await api.db(rt, load)


@router.get("/console", response_class=HTMLResponse)
async def console(request: Request, caller: Reader) -> HTMLResponse:
    rt: api.Runtime = request.app.state.runtime
    incidents, postmortems = await _open_incidents(rt)
    return _render(
        request, "console.html", caller=caller, incidents=incidents, postmortems=postmortems,
        severities=list(Severity), may_act=caller.role.at_least(Role.RESPONDER), message=_flash(request),
        declare_key=secrets.token_urlsafe(16),
    )


async def _incident_context(request: Request, number: int) -> dict[str, Any]:
    """Everything the incident page shows; 404 (as a page) when there is no such incident."""
    rt: api.Runtime = request.app.state.runtime
    now = rt.clock()
    policy = await oncall_routes.current_policy(rt)
    live = True
    try:
        view = await api._view(rt, number, rt.settings.query_timeout_seconds)
        state, deadlines = view.state, countdowns(view.deadlines, now)
    except (commands.IncidentGone, HTTPException) as err:
        if isinstance(err, HTTPException) and err.status_code != 503:
            raise
        stored = await api._stored_state(rt, number)
        if stored is None:
            raise HTTPException(status_code=404, detail=f"incident #{number} not found") from None
        state, deadlines = stored, countdowns(stored_deadlines(stored, policy), now)
        live = isinstance(err, commands.IncidentGone)  # a finished workflow: the stored state is final

    def load(session: Session) -> list[NotificationRow]:
        query = (
            select(NotificationRow).where(NotificationRow.incident_number == number)
            .order_by(NotificationRow.created_at, NotificationRow.key).limit(500)
        )
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows

    notifications = await api.db(rt, load)
    _, runs = await runbook_routes._db(rt, runbook_routes._load_runs(number))
    wid = incident_workflow_id(number)
    return {
        "state": state,
        "deadlines": deadlines,
        "live": live,
        "notifications": notifications,
        "runs": runs,
        "runbooks": list(request.app.state.runbooks),
        "people": sorted(policy.people),
        "incident_roles": list(IncidentRole),
        "severities": list(Severity),
        "phases": list(PublicPhase),
        "temporal_ui": rt.ui_link(wid),
        "workflow_id": wid,
        "is_open": state.status.value in OPEN,
    }


async def _incident_page(
    request: Request, caller: Caller, number: int, *, status: int = 200, error: str | None = None,
    message: str | None = None, form: dict[str, str] | None = None,
) -> HTMLResponse:
    try:
        context = await _incident_context(request, number)
    except HTTPException as err:
        return _render(request, "console_missing.html", err.status_code, caller=caller, reason=str(err.detail))
    return _render(
        request, "console_incident.html", status, caller=caller, error=error, message=message, form=form or {},
        may_act=caller.role.at_least(Role.RESPONDER), may_run_destructive=caller.role.at_least(Role.OPERATOR),
        **context,
    )


@router.get("/console/incidents/{incident_id}", response_class=HTMLResponse)
async def incident_page(request: Request, incident_id: IncidentId, caller: Reader) -> HTMLResponse:
    return await _incident_page(request, caller, incident_id, message=_flash(request))


# --- commands --------------------------------------------------------------------------------


def _reasons(err: ValidationError) -> str:
    """The same wording as the JSON API's 422 (field: message; ...)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in err.errors())


def _body(model: type[BaseModel], form: dict[str, str], fields: tuple[str, ...]) -> Any:
    """The JSON API's request body from the form's fields (an empty optional field is left out)."""
    data = {f: form[f] for f in fields if f in form and form[f] != ""}
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise HTTPException(status_code=422, detail=_reasons(err)) from None


def _done(request: Request, number: int, message: str) -> Response:
    note_for_audit(request, reason=message, incident=number)
    response = RedirectResponse(f"/console/incidents/{number}", status_code=303)
    response.set_cookie(FLASH_COOKIE, quote(message[:500]), max_age=60, httponly=True, samesite="lax",
                        path="/console")
    return response


async def _refused(request: Request, caller: Caller, number: int, err: HTTPException,
                   form: dict[str, str]) -> HTMLResponse:
    note_for_audit(request, reason=str(err.detail), incident=number)
    return await _incident_page(request, caller, number, status=err.status_code, error=str(err.detail), form=form)


async def _form(request: Request) -> dict[str, str]:
    form = await read_form(request)
    form.pop(CSRF_FIELD, None)
    return form


@router.post("/console/incidents", response_class=HTMLResponse)
async def declare(request: Request, caller: Actor) -> Response:
    rt: api.Runtime = request.app.state.runtime
    form = await _form(request)
    data = dict(form)
    data["components"] = [c for c in (p.strip() for p in form.get("components", "").split(",")) if c]  # type: ignore[assignment]
    started = form.get("impact_started_at", "").strip()
    try:
        if started:
            parsed = datetime.fromisoformat(started)
            data["impact_started_at"] = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()
        body = _body(DeclareIn, data, ("title", "severity", "summary", "components", "impact_started_at"))
        key = form.get("idempotency_key", "")[:100] or None
        out = await api.declare_incident(rt, caller, body, key, source="console")
    except ValueError:
        err = HTTPException(status_code=422, detail=f"impact_started_at: '{started[:40]}' is not a time "
                            "(write it as 2026-12-03 02:41, in UTC)")
        return await _declare_refused(request, caller, err, form)
    except HTTPException as err:
        return await _declare_refused(request, caller, err, form)
    return _done(request, out.id, f"Declared incident #{out.id}. The on-call people are being paged.")


async def _declare_refused(request: Request, caller: Caller, err: HTTPException, form: dict[str, str]) -> HTMLResponse:
    note_for_audit(request, reason=str(err.detail))
    rt: api.Runtime = request.app.state.runtime
    incidents, postmortems = await _open_incidents(rt)
    return _render(
        request, "console.html", err.status_code, caller=caller, incidents=incidents, postmortems=postmortems,
        severities=list(Severity), may_act=True, error=str(err.detail), form=form,
        declare_key=form.get("idempotency_key") or secrets.token_urlsafe(16),
    )


@router.post("/console/incidents/{incident_id}/acknowledge", response_class=HTMLResponse)
async def acknowledge(request: Request, incident_id: IncidentId, caller: Actor) -> Response:
    rt: api.Runtime = request.app.state.runtime
    form = await _form(request)
    try:
        out = await api.acknowledge_incident(rt, caller, incident_id, AckIn(), via="web")
    except HTTPException as err:
        return await _refused(request, caller, incident_id, err, form)
    return _done(request, incident_id, out.message)


@router.post("/console/incidents/{incident_id}/escalate", response_class=HTMLResponse)
async def escalate(request: Request, incident_id: IncidentId, caller: Actor) -> Response:
    rt: api.Runtime = request.app.state.runtime
    form = await _form(request)
    try:
        out = await api.escalate_incident(rt, caller, incident_id, EscalateIn(), via="web")
    except HTTPException as err:
        return await _refused(request, caller, incident_id, err, form)
    return _done(request, incident_id, out.message)


@router.post("/console/incidents/{incident_id}/status-updates", response_class=HTMLResponse, name="post_status")
async def status_update(request: Request, incident_id: IncidentId, caller: Actor) -> Response:
    rt: api.Runtime = request.app.state.runtime
    form = await _form(request)
    try:
        out = await api.post_status_update(rt, caller, incident_id,
                                           _body(StatusUpdateIn, form, ("message", "phase")))
    except HTTPException as err:
        return await _refused(request, caller, incident_id, err, form)
    return _done(request, incident_id, out.message)


@router.post("/console/incidents/{incident_id}/severity", response_class=HTMLResponse, name="change_severity")
async def severity(request: Request, incident_id: IncidentId, caller: Actor) -> Response:
    rt: api.Runtime = request.app.state.runtime
    form = await _form(request)
    try:
        out = await api.change_incident_severity(rt, caller, incident_id,
                                                 _body(SeverityIn, form, ("severity", "reason")))
    except HTTPException as err:
        return await _refused(request, caller, incident_id, err, form)
    return _done(request, incident_id, out.message)


@router.post("/console/incidents/{incident_id}/roles", response_class=HTMLResponse)
async def assign_role(request: Request, incident_id: IncidentId, caller: Actor) -> Response:
    rt: api.Runtime = request.app.state.runtime
    form = await _form(request)
    try:
        out = await api.assign_incident_role(rt, caller, incident_id, _body(RoleIn, form, ("role", "person")))
    except HTTPException as err:
        return await _refused(request, caller, incident_id, err, form)
    return _done(request, incident_id, out.message)


@router.post("/console/incidents/{incident_id}/resolve", response_class=HTMLResponse)
async def resolve(request: Request, incident_id: IncidentId, caller: Actor) -> Response:
    rt: api.Runtime = request.app.state.runtime
    form = await _form(request)
    try:
        out = await api.resolve_incident(rt, caller, incident_id, _body(ResolveIn, form, ("summary", "impact")))
    except HTTPException as err:
        return await _refused(request, caller, incident_id, err, form)
    return _done(request, incident_id, out.message)


def _params(text: str) -> dict[str, str]:
    """``name=value``, one a line (blank lines ignored), as the runbook's parameters."""
    params: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise HTTPException(status_code=422, detail=f"params line {n}: write each parameter as name=value")
        params[name.strip()] = value.strip()
    return params


@router.post("/console/incidents/{incident_id}/runbook-runs", response_class=HTMLResponse, name="start_run")
async def run_runbook(request: Request, incident_id: IncidentId, caller: Actor) -> Response:
    rt: api.Runtime = request.app.state.runtime
    form = await _form(request)
    try:
        data: dict[str, Any] = {k: form[k] for k in ("runbook", "reason") if form.get(k)}
        data["params"] = _params(form.get("params", ""))
        data["confirm_destructive"] = form.get("confirm_destructive") in ("on", "true", "yes", "1")
        try:
            body = runbook_routes.RunRunbookIn.model_validate(data)
        except ValidationError as err:
            raise HTTPException(status_code=422, detail=_reasons(err)) from None
        out = await runbook_routes.start_run(incident_id, body, rt, request.app.state.runbooks, caller)
    except HTTPException as err:
        return await _refused(request, caller, incident_id, err, form)
    return _done(request, incident_id, f"Runbook run #{out.run}: {out.message}")


@router.post("/console/incidents/{incident_id}/runbook-runs/{run}/abort", response_class=HTMLResponse)
async def abort_run(request: Request, incident_id: IncidentId, run: runbook_routes.RunId, caller: Actor) -> Response:
    rt: api.Runtime = request.app.state.runtime
    form = await _form(request)
    try:
        body = _body(runbook_routes.AbortIn, form, ("reason",))
        out = await runbook_routes.abort_run(incident_id, run, body, rt, caller)
    except HTTPException as err:
        return await _refused(request, caller, incident_id, err, form)
    return _done(request, incident_id, f"Runbook run #{run}: {out.message}")



StepNumber = Annotated[int, Path(ge=1, le=1000)]


@router.post("/console/incidents/{incident_id}/runbook-runs/{run}/steps/{step}/confirm", response_class=HTMLResponse)
async def confirm_step(request: Request, incident_id: IncidentId, run: runbook_routes.RunId, step: StepNumber,
                       caller: Actor) -> Response:
    rt: api.Runtime = request.app.state.runtime
    form = await _form(request)
    try:
        body = _body(runbook_routes.ConfirmIn, form, ("note",))
        out = await runbook_routes.confirm_step(incident_id, run, step, body, rt, caller)
    except HTTPException as err:
        return await _refused(request, caller, incident_id, err, form)
    return _done(request, incident_id, f"Runbook run #{run}: {out.message}")


@router.post("/console/incidents/{incident_id}/runbook-runs/{run}/steps/{step}/approve", response_class=HTMLResponse)
async def approve_step(request: Request, incident_id: IncidentId, run: runbook_routes.RunId, step: StepNumber,
                       caller: Approver) -> Response:
    rt: api.Runtime = request.app.state.runtime
    form = await _form(request)
    try:
        data = {"note": form.get("note", ""), "approve": form.get("decision", "approve") != "refuse"}
        try:
            body = runbook_routes.ApproveIn.model_validate(data)
        except ValidationError as err:
            raise HTTPException(status_code=422, detail=_reasons(err)) from None
        out = await runbook_routes.approve_step(incident_id, run, step, body, rt, caller)
    except HTTPException as err:
        return await _refused(request, caller, incident_id, err, form)
    return _done(request, incident_id, f"Runbook run #{run}: {out.message}")
