"""Alert webhooks beyond Alertmanager (Grafana, generic JSON) and the alert log.

Every webhook records the delivery as it came, then hands the alerts, in the
common shape, to the one intake (``warroom.activities.detection``): rules,
maintenance, grouping, update-with-start.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.activities.detection import IngestOutcome, Unroutable
from warroom.api import alerts, commands
from warroom.api import oncall as oncall_routes
from warroom.api.auth import Integration, integration, require
from warroom.api.schemas import AlertIngestOut
from warroom.models.access import Role
from warroom.models.detection import HeartbeatInput, Ping
from warroom.models.ids import heartbeat_workflow_id
from warroom.models.incident import AlertEvent
from warroom.models.tables import AlertDeliveryRow, UptimeCheckRow
from warroom.workflows import HeartbeatWorkflow

if TYPE_CHECKING:
    from warroom.api.app import Runtime

router = APIRouter()
MAX_ID = 2**31 - 1
Secret = Annotated[str, Path(max_length=100, description="the integration's secret (wri_...)")]


def get_runtime(request: Request) -> "Runtime":
    return request.app.state.runtime


RuntimeDep = Annotated["Runtime", Depends(get_runtime)]


def _db(rt: "Runtime", fn: Any) -> Any:
    def run() -> Any:
        with Session(rt.engine) as session, session.begin():
            return fn(session)

    return run_in_threadpool(run)


async def raw_payload(request: Request) -> Any:
    """The delivery as sent (already parsed once by the route's model), minus NUL characters."""
    try:
        return alerts._without_nul(json.loads(await request.body()))
    except ValueError:
        return None


async def ingest(
    rt: "Runtime", source: str, payload: Any, events: list[AlertEvent], group_key: str, receiver: str = "",
    integration_name: str | None = None,
) -> AlertIngestOut:
    """Record the delivery, then rules, grouping and the incident's workflow; the outcome goes
    back on the delivery's row."""
    intake = rt.intake
    assert intake is not None
    delivery = await intake.record(source, integration_name, payload)
    policy = await oncall_routes.current_policy(rt)
    timeout = rt.settings.command_timeout_seconds
    outcome: IngestOutcome | None = None
    try:
        outcome = await commands.call(
            intake.ingest(rt.client, rt.settings.task_queue, policy, events, source, group_key, receiver),
            timeout * 3, "declaring the incident",
        )
    except Unroutable as err:
        await intake.finish(delivery, None, str(err))
        raise HTTPException(status_code=409, detail=str(err)) from None
    except HTTPException as err:
        await intake.finish(delivery, None, str(err.detail))
        raise
    await intake.finish(delivery, outcome)
    return AlertIngestOut(incident_id=outcome.incident_id, action=outcome.action, new_alerts=outcome.new_alerts,
                          held_alerts=outcome.held_alerts)


# --- Grafana ---------------------------------------------------------------------------------------

Grafana = Annotated[Integration, Depends(integration("grafana"))]


async def _grafana(request: Request, rt: "Runtime", payload: alerts.GrafanaPayload, who: Integration) -> Any:
    return await ingest(rt, "grafana", await raw_payload(request), alerts.grafana_events(payload), payload.groupKey,
                        payload.receiver, who.name)


@router.post("/api/webhooks/grafana", response_model=AlertIngestOut, tags=["webhooks"])
async def grafana(request: Request, payload: alerts.GrafanaPayload, rt: RuntimeDep, who: Grafana) -> Any:
    """A Grafana alerting webhook contact point; the integration's secret is the bearer token."""
    return await _grafana(request, rt, payload, who)


@router.post("/api/webhooks/grafana/{token}", response_model=AlertIngestOut, tags=["webhooks"])
async def grafana_with_secret(request: Request, payload: alerts.GrafanaPayload, rt: RuntimeDep, who: Grafana,
                              token: Secret) -> Any:
    """The same, with the secret in the URL (prefer the header: URLs end up in logs)."""
    return await _grafana(request, rt, payload, who)


# --- the generic JSON alert ---------------------------------------------------------------------------

Generic = Annotated[Integration, Depends(integration("generic"))]


async def _generic(request: Request, rt: "Runtime", alert: alerts.GenericAlert, who: Integration) -> Any:
    return await ingest(rt, "generic", await raw_payload(request), [alert.event()], alert.key(), "", who.name)


@router.post("/api/webhooks/generic", response_model=AlertIngestOut, tags=["webhooks"])
async def generic(request: Request, alert: alerts.GenericAlert, rt: RuntimeDep, who: Generic) -> Any:
    """One alert from anything that can POST JSON: title, severity, component, dedup_key,
    status (firing or resolved), description, links, labels."""
    return await _generic(request, rt, alert, who)


@router.post("/api/webhooks/generic/{token}", response_model=AlertIngestOut, tags=["webhooks"])
async def generic_with_secret(request: Request, alert: alerts.GenericAlert, rt: RuntimeDep, who: Generic,
                              token: Secret) -> Any:
    return await _generic(request, rt, alert, who)


# --- the alert log ----------------------------------------------------------------------------------------


class DeliveryOut(BaseModel):
    id: int
    source: str
    integration: str | None
    received_at: Any
    outcome: str
    incident_id: int | None
    detail: str
    payload: Any = None


def _out(row: AlertDeliveryRow, with_payload: bool) -> DeliveryOut:
    return DeliveryOut(id=row.id, source=row.source, integration=row.integration, received_at=row.received_at,
                       outcome=row.outcome, incident_id=row.incident_number, detail=row.detail,
                       payload=row.payload if with_payload else None)


@router.get("/api/alert-deliveries", response_model=list[DeliveryOut], tags=["alerts"],
            dependencies=[Depends(require(Role.VIEWER))])
async def list_deliveries(
    rt: RuntimeDep,
    source: Annotated[str | None, Query(max_length=32)] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Every alert delivery, newest first, and what became of it (declared, joined, recorded,
    held, dropped, ignored, failed)."""
    def load(session: Session) -> list[DeliveryOut]:
        query = select(AlertDeliveryRow).order_by(AlertDeliveryRow.id.desc()).limit(limit)
        if source:
            query = query.where(AlertDeliveryRow.source == source)
        if incident_id is not None:
            query = query.where(AlertDeliveryRow.incident_number == incident_id)
        return [_out(r, False) for r in session.scalars(query)]

    return await _db(rt, load)


@router.get("/api/alert-deliveries/{delivery_id}", response_model=DeliveryOut, tags=["alerts"],
            dependencies=[Depends(require(Role.VIEWER))])
async def get_delivery(delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)], rt: RuntimeDep) -> Any:
    """One delivery with its payload exactly as it was received."""
    row = await _db(rt, lambda s: (lambda r: _out(r, True) if r else None)(s.get(AlertDeliveryRow, delivery_id)))
    if row is None:
        raise HTTPException(status_code=404, detail=f"no alert delivery {delivery_id}")
    return row


# --- heartbeats ------------------------------------------------------------------------------------------

HeartbeatSource = Annotated[Integration, Depends(integration("heartbeat"))]
HeartbeatName = Annotated[str, Path(min_length=1, max_length=63, description="the heartbeat's name")]


class PingOut(BaseModel):
    heartbeat: str
    next_call_within_seconds: float
    """Call again within this long (every + grace), or an alert is raised."""


async def _ping(rt: "Runtime", name: str, who: Integration) -> PingOut:
    assert rt.intake is not None
    monitor = rt.intake.config.heartbeat(name)
    if monitor is None:
        raise HTTPException(status_code=404, detail=f"no heartbeat '{name[:63]}' in the detection configuration")
    if who.name != name:
        raise HTTPException(status_code=403, detail=f"this secret belongs to heartbeat '{who.name}', not '{name}'")
    spec = HeartbeatInput.of(monitor)
    await commands.call(
        rt.client.start_workflow(
            HeartbeatWorkflow.run, spec, id=heartbeat_workflow_id(name), task_queue=rt.settings.task_queue,
            start_signal="ping", start_signal_args=[Ping(at=rt.clock(), monitor=spec)],
        ),
        rt.settings.command_timeout_seconds, "recording the heartbeat",
    )
    return PingOut(heartbeat=name, next_call_within_seconds=spec.deadline_seconds)


@router.post("/api/heartbeats/{name}", response_model=PingOut, tags=["webhooks"])
async def heartbeat(name: HeartbeatName, rt: RuntimeDep, who: HeartbeatSource) -> Any:
    """A job's "I ran" call; the heartbeat's integration secret is the bearer token. The first
    call starts the monitor; after that a call missing for every + grace raises an alert."""
    return await _ping(rt, name, who)


@router.post("/api/heartbeats/{name}/{token}", response_model=PingOut, tags=["webhooks"])
async def heartbeat_with_secret(name: HeartbeatName, rt: RuntimeDep, who: HeartbeatSource, token: Secret) -> Any:
    """The same, with the secret in the URL (for a bare ``curl`` in a crontab)."""
    return await _ping(rt, name, who)


# --- uptime checks ------------------------------------------------------------------------------------------


class CheckOut(BaseModel):
    name: str
    kind: str
    component: str
    target: str
    every_seconds: float
    fail_after: int
    failures: int = 0
    """Failures in a row."""
    alerting_since: Any = None
    last_at: Any = None
    last_ok: bool | None = None
    last_detail: str = ""
    last_latency_seconds: float | None = None


@router.get("/api/uptime-checks", response_model=list[CheckOut], tags=["alerts"],
            dependencies=[Depends(require(Role.VIEWER))])
async def uptime_checks(rt: RuntimeDep) -> Any:
    """Every configured uptime check with its recorded state (failures in a row, the open
    alert, the last run's result)."""
    assert rt.intake is not None
    checks = rt.intake.config.checks

    def load(session: Session) -> list[CheckOut]:
        rows = {r.name: r for r in session.scalars(select(UptimeCheckRow))}
        out = []
        for c in checks:
            row = rows.get(c.name)
            out.append(CheckOut(
                name=c.name, kind=c.kind, component=c.component, target=c.target(),
                every_seconds=c.every.total_seconds(), fail_after=c.fail_after,
                **({} if row is None else {
                    "failures": row.failures, "alerting_since": row.alerting_since, "last_at": row.last_at,
                    "last_ok": row.last_ok, "last_detail": row.last_detail, "last_latency_seconds": row.last_latency,
                }),
            ))
        return out

    return await _db(rt, load)
