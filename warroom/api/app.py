"""The API process: ``create_app(settings)`` is its composition root."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as FastAPIPath
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client, RPCTimeoutOrCancelledError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.common import WorkflowIDReusePolicy

from warroom.activities.detection import AlertIntake
from warroom.api import admin, alerts, commands, detection_routes, reports, slack, statuspage, twilio_webhooks
from warroom.api import auth as access
from warroom.api import oncall as oncall_routes
from warroom.api import postmortems as postmortem_routes
from warroom.api import runbooks as runbook_routes
from warroom.api.auth import Integration, Responder, acting_as, integration, public, require
from warroom.api.middleware import AuditMiddleware, BodyLimitMiddleware, SecurityHeadersMiddleware
from warroom.api.schemas import (
    AckIn,
    AlertIngestOut,
    CommandOut,
    DeclareIn,
    EscalateIn,
    IncidentOut,
    IncidentSummaryOut,
    NotificationOut,
    PostmortemIn,
    ResolveIn,
    RoleIn,
    SeverityIn,
    StatusUpdateIn,
)
from warroom.models.ids import incident_workflow_id
from warroom.models.incident import (
    AckInput,
    CommandResult,
    EscalateInput,
    IncidentInput,
    IncidentState,
    IncidentView,
    PostmortemDocument,
    PostmortemInput,
    ResolveInput,
    RoleInput,
    SeverityInput,
    StatusPlan,
    StatusUpdateInput,
    TimelineEntry,
    StatusUpdate,
)
from warroom.models.access import Caller, Role
from warroom.models.components import load_catalog
from warroom.models.config_store import CurrentConfig
from warroom.models.detection import load_detection
from warroom.models.policy import Policy, load_policy
from warroom.models.tables import (
    IncidentRow,
    NotificationRow,
    RequestKeyReused,
    StatusUpdateRow,
    TimelineRow,
    UserRow,
    allocate_incident_number,
)
from warroom.settings import Settings
from warroom.startup import open_read_model
from warroom.statuspage.config import StatusPageConfig, load_config
from warroom.temporal import DATA_CONVERTER
from warroom.workflows import IncidentWorkflow

log = logging.getLogger("warroom.api")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
OPEN_STATUSES = ("triggered", "acknowledged")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    policy: Policy
    engine: Engine
    client: Client
    clock: Clock
    statuspage: StatusPageConfig | None = None
    config: CurrentConfig | None = None
    """The configuration in force (stored versions); ``policy`` follows its newest version."""
    intake: AlertIntake | None = None
    """Rules, grouping and update-with-start for alerts of every source (warroom.activities.detection)."""

    def ui_link(self, workflow_id: str) -> str:
        base = self.settings.temporal_ui_url or f"http://127.0.0.1:{self.settings.temporal_ui_port}"
        return f"{base.rstrip('/')}/namespaces/{self.settings.temporal_namespace}/workflows/{workflow_id}"


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def rt_timeout(request: Request) -> float:
    runtime = getattr(request.app.state, "runtime", None)
    return runtime.settings.command_timeout_seconds if runtime is not None else 0.0

MAX_INCIDENT_NUMBER = 2**31 - 1
"""The read model's incident number is an INTEGER column (32 bits on PostgreSQL): a larger
id is malformed input, not a database error."""
IncidentId = Annotated[int, FastAPIPath(ge=1, le=MAX_INCIDENT_NUMBER, description="the incident number, e.g. 42")]

POSTMORTEM_BODY_BYTES = 4 * 1024**2
"""A postmortem may hold about 220,000 characters (sections, timeline, action items); in JSON with
every character escaped that is more than the default limit."""
_ALERT_WEBHOOK = re.compile(r"^/api/webhooks/(alertmanager|grafana|generic)(/|$)")
_POSTMORTEM = re.compile(r"^/api/incidents/[^/]+/postmortem(/draft)?/?$")


def body_limit(settings: Settings) -> Callable[[str], int]:
    """The largest request body each path accepts: alert webhooks (Alertmanager groups of
    thousands of alerts) and postmortems more, every other route ``max_request_bytes``."""
    default = settings.max_request_bytes

    def limit_for(path: str) -> int:
        if _ALERT_WEBHOOK.match(path):
            return max(default, settings.max_alert_request_bytes)
        if _POSTMORTEM.match(path):
            return max(default, POSTMORTEM_BODY_BYTES)
        return default

    return limit_for


def create_app(
    settings: Settings,
    *,
    client: Client | None = None,
    engine: Engine | None = None,
    clock: Clock = utc_now,
) -> FastAPI:
    """Build the API. ``client`` and ``engine`` may be injected by tests."""
    policy = load_policy(settings.policy)
    catalog = load_catalog(settings.components)  # a bad components file stops start-up here, named
    detection_config = load_detection(settings.detection)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        eng = engine
        if eng is None:
            # Waits for the database and migrates it (or checks it is current).
            eng = await asyncio.to_thread(open_read_model, settings)
        # The link secret: set, or the one stored in the database, so that links a worker sends validate here.
        status_config = await asyncio.to_thread(load_config, settings, eng, catalog)
        cli = client or await Client.connect(
            settings.temporal_target,
            namespace=settings.temporal_namespace,
            data_converter=DATA_CONVERTER,
            lazy=True,
        )
        app.state.runtime = Runtime(
            settings=settings, policy=policy, engine=eng, client=cli, clock=clock, statuspage=status_config,
            intake=AlertIntake(eng, detection_config, status_config.catalog, clock, settings.command_timeout_seconds,
                               settings.relay_targets),
        )
        await run_in_threadpool(oncall_routes.seed, app.state.runtime)
        if not await db(app.state.runtime, lambda s: s.scalar(select(UserRow.id).limit(1))):
            log.warning("nobody can sign in yet: create the first admin with 'warroom admin create NAME --role admin'")
        yield
        if engine is None:
            eng.dispose()

    app = FastAPI(
        title="warroom",
        version="0.1.0",
        summary="Incident-management automation: paging, escalation, status updates and postmortems, "
        "each incident a durable Temporal workflow.",
        lifespan=lifespan,
    )

    @app.exception_handler(commands.IncidentGone)
    async def _gone(request: Request, exc: commands.IncidentGone) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": "incident not found"})

    @app.exception_handler(RPCTimeoutOrCancelledError)
    async def _no_answer(request: Request, exc: RPCTimeoutOrCancelledError) -> JSONResponse:
        # Every route maps this through commands.call; this is the net under any that does not.
        err = commands.no_answer(rt_timeout(request), "handling the request")
        return JSONResponse(status_code=err.status_code, content={"detail": err.detail}, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": _reason(e), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors)
        return JSONResponse(status_code=422, content={"detail": reasons or "invalid request", "errors": errors})

    _routes(app)
    runbook_routes.install(app, settings)
    postmortem_routes.install(app)
    app.include_router(statuspage.router)
    app.include_router(twilio_webhooks.router)
    app.include_router(slack.router)
    app.include_router(oncall_routes.router)
    access.install(app)
    app.include_router(admin.router)
    app.include_router(detection_routes.router)
    app.include_router(reports.router)
    # Imported here: the console calls this module's command functions, so it imports it.
    from warroom.api import console

    console.install(app)
    app.add_middleware(AuditMiddleware)
    # Outside the audit log and before every route and dependency: nothing reads a body over the limit.
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit(settings))
    https = (settings.public_base_url or "").startswith("https://")
    app.add_middleware(SecurityHeadersMiddleware, https=https)  # outermost: headers on every answer
    return app


# --- helpers -------------------------------------------------------------------------


def _reason(error: Any) -> str:
    """A validation error's message as a person reads it: our own validators' words, without
    the "Value error, " that pydantic puts before them."""
    msg = str(error.get("msg", ""))
    return msg.removeprefix("Value error, ") if error.get("type") == "value_error" else msg


def _db(rt: Runtime, fn: Callable[[Session], Any]) -> Any:
    with Session(rt.engine) as session, session.begin():
        return fn(session)


async def db(rt: Runtime, fn: Callable[[Session], Any]) -> Any:
    return await run_in_threadpool(_db, rt, fn)


def _state_from_row(row: IncidentRow, session: Session) -> IncidentState:
    state = IncidentState.model_validate(row.state)
    timeline = session.scalars(
        select(TimelineRow).where(TimelineRow.incident_number == row.number).order_by(TimelineRow.seq)
    )
    state.timeline = [TimelineEntry(seq=t.seq, at=t.at, kind=t.kind, text=t.text, actor=t.actor) for t in timeline]
    updates = session.scalars(
        select(StatusUpdateRow).where(StatusUpdateRow.incident_number == row.number).order_by(StatusUpdateRow.seq)
    )
    state.status_updates = [
        StatusUpdate(seq=u.seq, at=u.at, kind=u.kind, author=u.author, message=u.message, phase=u.phase)
        for u in updates
    ]
    return state


async def _stored_state(rt: Runtime, number: int) -> IncidentState | None:
    def load(session: Session) -> IncidentState | None:
        row = session.get(IncidentRow, number)
        return _state_from_row(row, session) if row is not None else None

    return await db(rt, load)


async def _command(rt: Runtime, number: int, method: Any, arg: Any, update_id: str | None = None) -> CommandOut:
    try:
        result: CommandResult = await commands.update(
            rt.client, number, method, arg, rt.settings.command_timeout_seconds, update_id
        )
    except commands.IncidentGone:
        state = await _stored_state(rt, number)
        if state is None:
            raise HTTPException(status_code=404, detail=f"incident #{number} not found") from None
        raise HTTPException(
            status_code=409, detail=f"incident #{number} is {state.status.value}; it takes no more commands"
        ) from None
    log.info("%s accepted: %s", type(arg).__name__, result.message, extra={"incident": number})
    return CommandOut(incident_id=result.number, status=result.status.value, message=result.message)


def _placeholder(inp: IncidentInput, now: datetime) -> IncidentState:
    """What we can say about a just-declared incident before its workflow first answers."""
    return IncidentState(
        number=inp.number,
        title=inp.title,
        summary=inp.summary,
        severity=inp.severity,
        max_severity=inp.severity,
        components=inp.components,
        source=inp.source,
        declared_by=inp.declared_by,
        declared_at=now,
        detected_at=inp.detected_at,
        impact_started_at=inp.impact_started_at,
        status_plan=StatusPlan(first_deadline=now + inp.policy.first_status_within),
    )


async def _view(rt: Runtime, number: int, timeout: float) -> IncidentView:
    handle = rt.client.get_workflow_handle(incident_workflow_id(number))
    return await commands.call(handle.query(IncidentWorkflow.view), timeout, "reading the incident")


# --- commands (the JSON API and the console's forms both go through these) ---------------------


CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of the server's clock a caller's instant may be (their clock may run fast)."""


def check_components(rt: Runtime, names: list[str]) -> None:
    """Refuse component names the status page's catalogue does not know (422, naming the known ones)."""
    catalog = rt.statuspage.catalog if rt.statuspage is not None else None
    if catalog is None:
        return
    unknown = [n for n in names if catalog.resolve(n) is None]
    if unknown:
        known = ", ".join(c.id for c in catalog.components)
        what = ", ".join(f"'{n[:100]}'" for n in unknown)
        raise HTTPException(status_code=422, detail=f"components: unknown component {what} (known: {known})")


def check_not_future(field: str, value: datetime | None, now: datetime) -> None:
    if value is not None and value > now + CLOCK_SKEW:
        raise HTTPException(
            status_code=422,
            detail=f"{field}: {value.isoformat()} is in the future (now {now.isoformat(timespec='seconds')}); "
                   "give when it happened",
        )


async def declare_incident(
    rt: Runtime, caller: Caller, body: DeclareIn, idempotency_key: str | None, source: str = "api"
) -> IncidentOut:
    declared_by = acting_as(caller, body.declared_by, "declared_by")
    now = rt.clock()
    check_components(rt, body.components)
    check_not_future("impact_started_at", body.impact_started_at, now)
    key = fingerprint = None
    if idempotency_key:
        # A key is the caller's own: another person's identical key is another request.
        # It stands for one request: the same key with a different body is refused.
        key = "api:" + hashlib.sha256(f"{declared_by}\0{idempotency_key}".encode()).hexdigest()
        fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()[:16]
    try:
        number = await db(rt, lambda s: allocate_incident_number(s, now, key, fingerprint))
    except RequestKeyReused as err:
        raise HTTPException(
            status_code=422,
            detail=f"Idempotency-Key: this key declared incident #{err.number} with a different request; "
                   "use a new key for a new incident",
        ) from None
    inp = IncidentInput(
        number=number,
        title=body.title,
        severity=body.severity,
        summary=body.summary,
        components=body.components,
        impact_started_at=body.impact_started_at,
        detected_at=now,
        declared_by=declared_by,
        source=source,
        policy=await oncall_routes.current_policy(rt),
        relay=rt.settings.relay_targets,
    )
    wid = incident_workflow_id(number)
    try:
        await commands.call(
            rt.client.start_workflow(
                IncidentWorkflow.run,
                inp,
                id=wid,
                task_queue=rt.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            ),
            rt.settings.command_timeout_seconds,
            "declaring the incident",
        )
    except WorkflowAlreadyStartedError:
        if key is None:
            raise HTTPException(status_code=409, detail=f"incident #{number} already exists") from None
        # The same Idempotency-Key again: answer with the incident it created.
    try:
        view = await _view(rt, number, min(5.0, rt.settings.command_timeout_seconds))
        return IncidentOut.from_view(view, wid, rt.ui_link(wid))
    except HTTPException as err:
        if err.status_code != 503:
            raise
        return IncidentOut.from_state(_placeholder(inp, now), {}, wid, rt.ui_link(wid))


async def acknowledge_incident(rt: Runtime, caller: Caller, number: int, body: AckIn, via: str = "api") -> CommandOut:
    person = acting_as(caller, body.person, "person")
    return await _command(rt, number, IncidentWorkflow.acknowledge, AckInput(person=person, via=via))


async def escalate_incident(rt: Runtime, caller: Caller, number: int, body: EscalateIn, via: str = "api") -> CommandOut:
    by = acting_as(caller, body.person, "person")
    return await _command(rt, number, IncidentWorkflow.escalate, EscalateInput(by=by, via=via))


async def post_status_update(
    rt: Runtime, caller: Caller, number: int, body: StatusUpdateIn, idempotency_key: str | None = None
) -> CommandOut:
    arg = StatusUpdateInput(message=body.message, author=acting_as(caller, body.author, "author"), phase=body.phase)
    update_id = commands.command_update_id(arg.author, idempotency_key, arg)
    return await _command(rt, number, IncidentWorkflow.post_status_update, arg, update_id)


async def assign_incident_role(rt: Runtime, caller: Caller, number: int, body: RoleIn) -> CommandOut:
    arg = RoleInput(role=body.role, person=body.person, by=acting_as(caller, body.by, "by"))
    return await _command(rt, number, IncidentWorkflow.assign_role, arg)


async def change_incident_severity(rt: Runtime, caller: Caller, number: int, body: SeverityIn) -> CommandOut:
    arg = SeverityInput(severity=body.severity, by=acting_as(caller, body.by, "by"), reason=body.reason)
    return await _command(rt, number, IncidentWorkflow.change_severity, arg)


async def resolve_incident(rt: Runtime, caller: Caller, number: int, body: ResolveIn) -> CommandOut:
    arg = ResolveInput(summary=body.summary, impact=body.impact, by=acting_as(caller, body.by, "by"))
    return await _command(rt, number, IncidentWorkflow.resolve, arg)


# --- routes --------------------------------------------------------------------------


def _routes(app: FastAPI) -> None:  # noqa: C901 - one place that lists every route
    read = [Depends(require(Role.VIEWER))]

    @app.get("/healthz", tags=["ops"], dependencies=[Depends(public("for load balancers and monitors: up or down"))])
    async def healthz(rt: RuntimeDep) -> JSONResponse:
        try:
            await asyncio.wait_for(rt.client.service_client.check_health(), 3)
        except Exception as err:  # noqa: BLE001 - any failure means "not healthy"
            return JSONResponse(
                status_code=503, content={"status": "unavailable", "temporal": f"unreachable ({type(err).__name__})"}
            )
        return JSONResponse(status_code=200, content={"status": "ok", "temporal": "reachable"})

    @app.post("/api/incidents", status_code=201, response_model=IncidentOut, tags=["incidents"])
    async def declare(
        body: DeclareIn,
        rt: RuntimeDep,
        caller: Responder,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Any:
        return await declare_incident(rt, caller, body, idempotency_key)

    @app.get("/api/incidents", response_model=list[IncidentSummaryOut], tags=["incidents"], dependencies=read)
    async def list_incidents(
        rt: RuntimeDep,
        status: Annotated[str | None, Query(pattern="^(open|triggered|acknowledged|resolved|closed)$")] = None,
        severity: Annotated[str | None, Query(pattern="^SEV-[1-4]$")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> Any:
        def load(session: Session) -> list[IncidentSummaryOut]:
            query = select(IncidentRow).order_by(IncidentRow.number.desc()).limit(limit)
            if status == "open":
                query = query.where(IncidentRow.status.in_(OPEN_STATUSES))
            elif status:
                query = query.where(IncidentRow.status == status)
            if severity:
                query = query.where(IncidentRow.severity == severity)
            return [
                IncidentSummaryOut(
                    id=r.number,
                    title=r.title,
                    severity=r.severity,
                    status=r.status,
                    source=r.source,
                    components=r.components,
                    declared_at=r.declared_at,
                    acknowledged_at=r.acknowledged_at,
                    acknowledged_by=r.acknowledged_by,
                    resolved_at=r.resolved_at,
                )
                for r in session.scalars(query)
            ]

        return await db(rt, load)

    @app.get("/api/incidents/{incident_id}", response_model=IncidentOut, tags=["incidents"], dependencies=read)
    async def get_incident(incident_id: IncidentId, rt: RuntimeDep) -> Any:
        wid = incident_workflow_id(incident_id)
        try:
            view = await _view(rt, incident_id, rt.settings.query_timeout_seconds)
            return IncidentOut.from_view(view, wid, rt.ui_link(wid))
        except (commands.IncidentGone, HTTPException) as err:
            if isinstance(err, HTTPException) and err.status_code != 503:
                raise
            stored = await _stored_state(rt, incident_id)
            if stored is None:
                if isinstance(err, HTTPException):
                    raise
                raise HTTPException(status_code=404, detail=f"incident #{incident_id} not found") from None
            return IncidentOut.from_state(stored, {}, wid, rt.ui_link(wid))

    @app.post("/api/incidents/{incident_id}/acknowledge", response_model=CommandOut, tags=["commands"])
    async def acknowledge(incident_id: IncidentId, body: AckIn, rt: RuntimeDep, caller: Responder) -> Any:
        return await acknowledge_incident(rt, caller, incident_id, body)

    @app.post("/api/incidents/{incident_id}/escalate", response_model=CommandOut, tags=["commands"])
    async def escalate(incident_id: IncidentId, body: EscalateIn, rt: RuntimeDep, caller: Responder) -> Any:
        return await escalate_incident(rt, caller, incident_id, body)

    @app.post("/api/incidents/{incident_id}/status-updates", response_model=CommandOut, tags=["commands"])
    async def post_status(
        incident_id: IncidentId,
        body: StatusUpdateIn,
        rt: RuntimeDep,
        caller: Responder,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Any:
        """A public update. Sent again with the same ``Idempotency-Key`` (a client retrying
        after a timeout), it is posted once and the first answer comes back."""
        return await post_status_update(rt, caller, incident_id, body, idempotency_key)

    @app.post("/api/incidents/{incident_id}/roles", response_model=CommandOut, tags=["commands"])
    async def assign_role(incident_id: IncidentId, body: RoleIn, rt: RuntimeDep, caller: Responder) -> Any:
        return await assign_incident_role(rt, caller, incident_id, body)

    @app.post("/api/incidents/{incident_id}/severity", response_model=CommandOut, tags=["commands"])
    async def change_severity(incident_id: IncidentId, body: SeverityIn, rt: RuntimeDep, caller: Responder) -> Any:
        return await change_incident_severity(rt, caller, incident_id, body)

    @app.post("/api/incidents/{incident_id}/resolve", response_model=CommandOut, tags=["commands"])
    async def resolve(incident_id: IncidentId, body: ResolveIn, rt: RuntimeDep, caller: Responder) -> Any:
        return await resolve_incident(rt, caller, incident_id, body)

    @app.post("/api/incidents/{incident_id}/postmortem", response_model=CommandOut, tags=["commands"])
    async def submit_postmortem(incident_id: IncidentId, body: PostmortemIn, rt: RuntimeDep, caller: Responder) -> Any:
        by = acting_as(caller, body.by, "by")
        doc = PostmortemDocument(
            summary=body.summary,
            timeline=body.timeline,
            root_cause=body.root_cause,
            impact=body.impact,
            what_went_well=body.what_went_well,
            what_could_improve=body.what_could_improve,
            action_items=body.items(),
        )
        return await _command(rt, incident_id, IncidentWorkflow.submit_postmortem, PostmortemInput(document=doc, by=by))

    @app.get("/api/notifications", response_model=list[NotificationOut], tags=["incidents"], dependencies=read)
    async def notifications(
        rt: RuntimeDep,
        incident_id: Annotated[int | None, Query(ge=1, le=MAX_INCIDENT_NUMBER)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> Any:
        def load(session: Session) -> list[NotificationOut]:
            query = select(NotificationRow).order_by(NotificationRow.created_at, NotificationRow.key).limit(limit)
            if incident_id is not None:
                query = query.where(NotificationRow.incident_number == incident_id)
            return [
                NotificationOut(
                    key=r.key,
                    incident_id=r.incident_number,
                    person=r.person_id,
                    channel=r.channel,
                    provider=r.provider,
                    kind=r.kind,
                    subject=r.subject,
                    text=r.text,
                    status=r.status,
                    detail=r.detail,
                    created_at=r.created_at,
                    sent_at=r.sent_at,
                )
                for r in session.scalars(query)
            ]

        return await db(rt, load)

    @app.post("/api/webhooks/alertmanager", response_model=AlertIngestOut, tags=["webhooks"])
    async def alertmanager(request: Request, payload: alerts.AlertmanagerPayload, rt: RuntimeDep,
                           who: AlertmanagerSource) -> Any:
        """An Alertmanager notification; the integration's secret is the bearer token."""
        return await _ingest_alertmanager(rt, payload, request, who)

    @app.post("/api/webhooks/alertmanager/{token}", response_model=AlertIngestOut, tags=["webhooks"])
    async def alertmanager_with_secret(
        request: Request,
        payload: alerts.AlertmanagerPayload,
        rt: RuntimeDep,
        who: AlertmanagerSource,
        token: Annotated[str, FastAPIPath(max_length=100, description="the integration's secret (wri_...)")],
    ) -> Any:
        """An Alertmanager notification, with the integration's secret in the URL (for senders that
        cannot set a header; prefer the header: URLs end up in logs)."""
        return await _ingest_alertmanager(rt, payload, request, who)


AlertmanagerSource = Annotated[Integration, Depends(integration("alertmanager"))]


async def _ingest_alertmanager(rt: Runtime, payload: alerts.AlertmanagerPayload, request: Request,
                              who: Integration) -> AlertIngestOut:
    """Through the one intake (warroom.activities.detection): rules, maintenance, grouping, update-with-start."""
    return await detection_routes.ingest(
        rt, "alertmanager", await detection_routes.raw_payload(request), alerts.to_events(payload), payload.groupKey,
        payload.receiver, who.name,
    )
