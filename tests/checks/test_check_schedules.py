"""Uptime checks on real Temporal schedules: a server goes down, the check fails N times and
declares an incident through the intake, which puts the component in its outage state on the
status page; it comes back and the recovery lands in the
incident's timeline. The schedule is Temporal's, so the check keeps firing across a worker
restart."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client, ScheduleOverlapPolicy

from tests.api.support import eventually
from tests.checks_servers import LocalServer
from tests.conftest import running_worker, start_incident_numbers_at
from warroom.check_schedules import sync_check_schedules
from warroom.models.checks import CheckSpec, check_schedule_id
from warroom.models.components import DEFAULT_STATUSPAGE_PATH, ComponentState, load_catalog
from warroom.models.tables import ComponentImpactRow, IncidentRow, TimelineRow, UptimeCheckRow
from warroom.statuspage import render


def _incidents(engine: Engine) -> list[IncidentRow]:
    with Session(engine) as session:
        return list(session.scalars(select(IncidentRow).where(IncidentRow.source == "uptime")))


def _timeline(engine: Engine, number: int) -> list[str]:
    with Session(engine) as session:
        return [t.text for t in session.scalars(select(TimelineRow).where(TimelineRow.incident_number == number)
                                                .order_by(TimelineRow.seq))]


def _check(engine: Engine, name: str) -> dict[str, Any] | None:
    with Session(engine) as session:
        row = session.get(UptimeCheckRow, name)
        return None if row is None else {"failures": row.failures, "ok": row.last_ok, "detail": row.last_detail,
                                          "alerting": row.alerting_since is not None}


async def test_check_declares_on_the_nth_failure_survives_a_restart_and_records_recovery(
    client: Client, primary_engine: Engine
) -> None:
    engine = primary_engine
    await asyncio.to_thread(start_incident_numbers_at, engine, 1_800_000_000 + uuid.uuid4().int % 10_000_000)
    queue, prefix = f"checks-{uuid.uuid4().hex[:8]}", f"uptime-check-t{uuid.uuid4().hex[:6]}-"
    name = f"t{uuid.uuid4().hex[:6]}-cp"
    server = LocalServer().start()
    spec = CheckSpec.model_validate({"name": name, "kind": "http", "component": "control-panel", "url": server.url,
                                     "every": "1s", "timeout": "1s", "fail_after": 2, "severity": "SEV-2"})
    sid = check_schedule_id(name)
    try:
        assert await sync_check_schedules(client, [spec], queue, prefix="uptime-check-" + name) == [sid]
        described = await client.get_schedule_handle(sid).describe()
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

        async with running_worker(client, engine, queue):
            await eventually("a passing run", lambda: _ok(engine, name, True), timeout=15)
        # the worker is gone; the server goes down; a new worker picks the schedule up
        server.stop()
        async with running_worker(client, engine, queue):
            [inc] = await eventually("the incident", lambda: asyncio.to_thread(_incidents, engine), timeout=20)
            assert (inc.severity, inc.components, inc.status) == ("SEV-2", ["control-panel"], "triggered")
            state = await asyncio.to_thread(_check, engine, name)
            assert state is not None and state["alerting"] and state["failures"] >= 2
            assert "cannot connect" in state["detail"]
            # The check feeds the component's recorded state: the status page and its uptime
            # history read the incident's interval on the control panel.
            [impact] = await eventually("the control panel's interval",
                                        lambda: asyncio.to_thread(_impacts, engine, inc.number), timeout=10)
            assert (impact.component, impact.state, impact.ended_at) == ("control-panel", "partial_outage", None)
            states = await asyncio.to_thread(_states_now, engine)
            assert states["control-panel"] is ComponentState.PARTIAL_OUTAGE
            # still failing: the same incident, no second one
            await asyncio.sleep(2)
            assert [i.number for i in await asyncio.to_thread(_incidents, engine)] == [inc.number]

            server.start()

            async def recovered() -> list[str]:
                lines = await asyncio.to_thread(_timeline, engine, inc.number)
                return [line for line in lines if "Alert resolved (uptime)" in line]

            [line] = await eventually("the recovery in the timeline", recovered, timeout=20)
            assert "recovered" in line
            assert (await asyncio.to_thread(_check, engine, name))["alerting"] is False  # type: ignore[index]
    finally:
        server.stop()
        await client.get_schedule_handle(sid).delete()


def _impacts(engine: Engine, number: int) -> list[ComponentImpactRow]:
    with Session(engine) as session:
        return list(session.scalars(select(ComponentImpactRow).where(ComponentImpactRow.incident_number == number)))


def _states_now(engine: Engine) -> dict[str, ComponentState]:
    """What the public status page would show for each component right now."""
    now = datetime.now(UTC)
    with Session(engine) as session:
        snap = render.load(session, now)
    return render.build(snap, load_catalog(DEFAULT_STATUSPAGE_PATH), now).states_at(now)


async def _ok(engine: Engine, name: str, ok: bool) -> bool:
    state = await asyncio.to_thread(_check, engine, name)
    return state is not None and state["ok"] is ok


async def test_sync_deletes_schedules_of_checks_no_longer_configured(client: Client) -> None:
    prefix = f"uptime-check-s{uuid.uuid4().hex[:6]}-"
    specs = [CheckSpec.model_validate({"name": f"{prefix[len('uptime-check-'):]}{n}", "kind": "dns",
                                       "component": "dns", "hostname": "localhost", "every": "1h"}) for n in "ab"]
    await sync_check_schedules(client, specs, "nowhere", prefix=prefix)
    kept = await sync_check_schedules(client, specs[:1], "nowhere", prefix=prefix)
    assert kept == [check_schedule_id(specs[0].name)]

    async def listed() -> list[str] | None:
        ids = sorted([s.id async for s in await client.list_schedules() if s.id.startswith(prefix)])
        return ids if ids == kept else None

    await eventually("the list without the removed check", listed, timeout=15)
    await client.get_schedule_handle(kept[0]).delete()
