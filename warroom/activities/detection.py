"""The one way an alert becomes an incident, for every source.

``AlertIntake.ingest`` takes alerts already in the common shape (``AlertEvent``),
applies the detection rules, holds alerts for components under planned
maintenance, groups the rest (group key, else the component's window) and hands
each group to its incident's workflow by update-with-start: a new group declares
an incident, a known one joins it, a redelivery changes nothing.

The API calls it for webhook deliveries; the ``raise_alert`` activity calls it
for the sources that live in the worker (missed heartbeats, failing uptime
checks, bursts of customer reports), so every source takes the same path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from warroom.models import detection
from warroom.models.components import Catalog, Maintenance, components_in_maintenance
from warroom.models.config_store import CurrentConfig
from warroom.models.detection import DetectionConfig, IngestOutcome, RaiseAlertInput, Routed
from warroom.models.ids import (
    INCIDENT_WORKFLOW_NAME,
    RAISE_ALERT_ACTIVITY,
    RECEIVE_ALERTS_UPDATE,
    incident_workflow_id,
)
from warroom.models.incident import AlertBatch, AlertBatchResult, AlertEvent, IncidentInput
from warroom.models.policy import Policy
from warroom.models.tables import (
    AlertDeliveryRow,
    AlertGroup,
    AlertWindowRow,
    HeldAlertRow,
    MaintenanceRow,
    allocate_incident_number,
    insert_ignoring_duplicates,
)
from warroom.temporal import answer_within

log = logging.getLogger("warroom.detection")
Clock = Callable[[], datetime]
CLAIM_ATTEMPTS = 5


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Retry(Exception):
    """Another delivery changed the group or window rows first: claim again."""


class Unroutable(Exception):
    """The group's incident keeps closing under us; the sender should retry."""


@dataclass
class AlertIntake:
    engine: Engine
    config: DetectionConfig
    catalog: Catalog | None = None
    clock: Clock = utc_now
    timeout: float = 10.0
    relay: list[str] = field(default_factory=list)
    """Where incidents it declares are mirrored (Settings.relay_targets: Slack, outgoing webhooks)."""

    # --- the raw delivery -------------------------------------------------------------------

    def _db(self, fn: Callable[[Session], Any]) -> Any:
        with Session(self.engine) as session, session.begin():
            return fn(session)

    async def db(self, fn: Callable[[Session], Any]) -> Any:
        return await asyncio.to_thread(self._db, fn)

    async def record(self, source: str, integration: str | None, payload: Any) -> int:
        now = self.clock()

        def add(session: Session) -> int:
            row = AlertDeliveryRow(source=source, integration=integration, received_at=now, payload=payload,
                                   outcome="received", detail="")
            session.add(row)
            session.flush()
            return row.id

        return int(await self.db(add))

    async def finish(self, delivery_id: int, outcome: IngestOutcome | None, detail: str = "") -> None:
        def write(session: Session) -> None:
            session.execute(update(AlertDeliveryRow).where(AlertDeliveryRow.id == delivery_id).values(
                outcome=outcome.action if outcome else "failed",
                incident_number=outcome.incident_id if outcome else None,
                detail=detail[:2000],
            ))

        await self.db(write)

    # --- maintenance ------------------------------------------------------------------------

    async def _hold(self, routed: list[Routed], now: datetime) -> list[Routed]:
        """Firing alerts for a component under planned maintenance: recorded, nobody paged."""
        if self.catalog is None:
            return []
        catalog = self.catalog

        def windows(session: Session) -> list[Maintenance]:
            rows = session.scalars(select(MaintenanceRow).where(
                MaintenanceRow.cancelled_at.is_(None), MaintenanceRow.starts_at <= now, MaintenanceRow.ends_at > now))
            return [Maintenance(id=r.id, components=tuple(r.components), start=r.starts_at, end=r.ends_at) for r in rows]

        active = await self.db(windows)
        if not active:
            return []
        inside = components_in_maintenance(catalog, active, now)
        held, rows = [], []
        for r in routed:
            cid = catalog.resolve(r.component) if r.component else None
            if r.alert.status != "firing" or cid not in inside:
                continue
            window = next(w for w in active if cid in catalog.resolve_all(w.components))
            e = r.alert
            held.append(r)
            rows.append({
                "key": f"{e.fingerprint}|{e.starts_at.isoformat() if e.starts_at else ''}"[:300],
                "fingerprint": e.fingerprint, "name": e.name, "summary": e.summary[:2000], "component": cid,
                "maintenance_id": window.id, "group_key": (e.dedup_key or "")[:1000], "starts_at": e.starts_at,
                "received_at": now,
            })
        if rows:
            await self.db(lambda s: insert_ignoring_duplicates(s, HeldAlertRow, rows))
        return held

    # --- grouping ---------------------------------------------------------------------------

    def _claim(self, session: Session, ghash: str, key: str, component: str | None, now: datetime) -> int:
        """The open incident of this group: by its key, else the component's window, else a new number."""
        window = self.config.grouping.component_window
        chash = detection.component_hash(component) if component else None
        row = session.get(AlertGroup, ghash)
        w = session.get(AlertWindowRow, chash) if chash else None
        if row is not None:
            if w is not None and w.incident_number == row.incident_number:
                w.last_alert_at = max(w.last_alert_at, now)
            return row.incident_number
        if w is not None and detection.joins_component_window(w.last_alert_at, now, window):
            try:
                with session.begin_nested():
                    session.add(AlertGroup(group_hash=ghash, group_key=key[:10000], incident_number=w.incident_number,
                                           opened_at=now))
            except IntegrityError:
                raise _Retry from None
            w.last_alert_at = max(w.last_alert_at, now)
            return w.incident_number
        try:
            with session.begin_nested():
                number = allocate_incident_number(session, now)
                session.add(AlertGroup(group_hash=ghash, group_key=key[:10000], incident_number=number, opened_at=now))
                if chash is not None and component is not None:
                    if w is None:
                        session.add(AlertWindowRow(component_hash=chash, component=component[:100],
                                                   incident_number=number, last_alert_at=now))
                    else:
                        # Replace the stale window only if nobody else did meanwhile.
                        done = session.execute(
                            update(AlertWindowRow)
                            .where(AlertWindowRow.component_hash == chash,
                                   AlertWindowRow.incident_number == w.incident_number)
                            .values(incident_number=number, last_alert_at=now)
                        )
                        if done.rowcount != 1:  # type: ignore[attr-defined]
                            raise IntegrityError("window", {}, Exception("changed"))
                session.flush()
        except IntegrityError:
            raise _Retry from None
        return number

    def _release(self, session: Session, ghash: str, number: int) -> None:
        session.execute(delete(AlertGroup).where(AlertGroup.group_hash == ghash, AlertGroup.incident_number == number))
        session.execute(delete(AlertWindowRow).where(AlertWindowRow.incident_number == number))

    async def claim(self, ghash: str, key: str, component: str | None) -> int:
        for _ in range(CLAIM_ATTEMPTS):
            now = self.clock()
            try:
                return int(await self.db(lambda s: self._claim(s, ghash, key, component, now)))
            except _Retry:
                continue
        raise Unroutable("other deliveries keep changing this alert group; retry the delivery")

    # --- the one path -----------------------------------------------------------------------

    async def ingest(
        self,
        client: Client,
        task_queue: str,
        policy: Policy,
        events: Sequence[AlertEvent],
        source: str,
        group_key: str,
        receiver: str = "",
    ) -> IngestOutcome:
        now = self.clock()
        routed = [detection.apply_rules(self.config.alert_rules, e) for e in events]
        wanted = [r for r in routed if r.action == "incident"]
        held = await self._hold(wanted, now)
        held_ids = {id(r) for r in held}
        groups = detection.partition([r for r in wanted if id(r) not in held_ids], group_key)
        out = IngestOutcome(held_alerts=len(held))
        for key, group in groups.items():
            ghash = detection.group_hash(source, key, receiver)
            batch = AlertBatch(group_key=key, alerts=[detection.with_rule_changes(r) for r in group])
            if any(r.alert.status == "firing" for r in group):
                number, action, fresh = await self._declare_or_join(client, task_queue, policy, source, key, ghash,
                                                                     group, batch)
            else:
                number, action, fresh = await self._record_resolved(client, ghash, batch)
            out.new_alerts += fresh
            if number is not None:
                out.incidents.append(number)
                if out.incident_id is None:
                    out.incident_id, out.action = number, action
        if out.incident_id is None:
            if held:
                out.action = "held"
            elif any(r.action == "record" for r in routed):
                out.action = "recorded"
            elif routed and all(r.action == "drop" for r in routed):
                out.action = "dropped"
        return out

    async def _record_resolved(self, client: Client, ghash: str, batch: AlertBatch) -> tuple[int | None, str, int]:
        def mapped(session: Session) -> int | None:
            row = session.get(AlertGroup, ghash)
            return row.incident_number if row is not None else None

        number = await self.db(mapped)
        if number is None:
            return None, "ignored", 0
        handle = client.get_workflow_handle(incident_workflow_id(number))
        try:
            result: AlertBatchResult = await answer_within(
                handle.execute_update(RECEIVE_ALERTS_UPDATE, batch, result_type=AlertBatchResult), self.timeout)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None, "ignored", 0
            raise
        return number, "recorded", result.new_alerts

    async def _declare_or_join(
        self, client: Client, task_queue: str, policy: Policy, source: str, key: str, ghash: str,
        group: list[Routed], batch: AlertBatch,
    ) -> tuple[int, str, int]:
        details = detection.declaration(group)
        component = details["components"][0] if details["components"] else None
        for _attempt in range(3):
            number = await self.claim(ghash, key, component)
            inp = IncidentInput(
                number=number, detected_at=self.clock(), declared_by=source, source=source, group_key=key[:10000],
                policy=policy, relay=list(self.relay), **details,
            )
            start = WithStartWorkflowOperation(
                INCIDENT_WORKFLOW_NAME, inp, id=incident_workflow_id(number), task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            try:
                result: AlertBatchResult = await answer_within(
                    client.execute_update_with_start_workflow(
                        RECEIVE_ALERTS_UPDATE, batch, start_workflow_operation=start, result_type=AlertBatchResult),
                    self.timeout)
            except WorkflowAlreadyStartedError:
                result = AlertBatchResult(number=number, accepted=False)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                result = AlertBatchResult(number=number, accepted=False)
            finally:
                _settle(start)
            if result.accepted:
                action = "declared" if result.first_batch else "joined"
                log.info("%s alert group %s %s incident", source, key[:80], action, extra={"incident": number})
                return number, action, result.new_alerts
            # The incident this group (or component) pointed at is over: open a fresh one.
            await self.db(lambda s: self._release(s, ghash, number))
        raise Unroutable("the alert group's incident keeps closing; retry the delivery")


class DetectionActivities:
    """Activities of the sources that run in the worker; they raise alerts through the intake."""

    def __init__(self, intake: AlertIntake, policy: Policy, config: CurrentConfig | None = None) -> None:
        self.intake = intake
        self.policy = policy
        self.config = config

    def current_policy(self) -> Policy:
        if self.config is not None:
            try:
                current = self.config.get()
            except Exception:  # noqa: BLE001 - keep declaring on the policy we have
                current = None
            if current is not None:
                return current.policy
        return self.policy

    @activity.defn(name=RAISE_ALERT_ACTIVITY)
    async def raise_alert(self, inp: RaiseAlertInput) -> IngestOutcome:
        """Idempotent: the same alert (fingerprint, status, start) joins its incident once."""
        info = activity.info()
        name = inp.alert.labels.get("heartbeat")
        if inp.alert.source == "heartbeat" and name and self.intake.config.heartbeat(name) is None:
            log.warning("heartbeat %s is no longer configured; its missed call raises nothing", name[:63])
            return IngestOutcome(action="dropped")
        policy = await asyncio.to_thread(self.current_policy)
        delivery = await self.intake.record(inp.alert.source, None, inp.model_dump(mode="json"))
        outcome = await self.intake.ingest(
            activity.client(), info.task_queue, policy, [inp.alert], inp.alert.source, inp.group_key)
        await self.intake.finish(delivery, outcome)
        return outcome

    def all(self) -> list[Callable[..., object]]:
        return [self.raise_alert]


def _settle(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """Take the start operation's outcome. When the start was refused (the group's incident is
    closed, and its id may not be reused), the SDK sets that error on the operation's handle as
    well; nobody awaits it here, and asyncio would log it as a "never retrieved" traceback."""
    handle = start._workflow_handle  # the SDK's future behind workflow_handle()
    if handle.done() and not handle.cancelled():
        handle.exception()
