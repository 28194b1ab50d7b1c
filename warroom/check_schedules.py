"""Temporal schedules for the built-in uptime checks, kept in line with the configuration.

Called from the worker's composition root at start-up (and by tests): one schedule
per configured check, overlap policy SKIP (a run still going when the next is due
means the next is skipped, never two at once); schedules of checks no longer
configured are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from warroom.models.checks import CHECK_SCHEDULE_PREFIX, CheckRunInput, CheckSpec, check_schedule_id
from warroom.workflows.uptime import UptimeCheckWorkflow

log = logging.getLogger("warroom.checks")


def schedule_for(spec: CheckSpec, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            UptimeCheckWorkflow.run, CheckRunInput(spec=spec), id=f"uptime-check-run-{spec.name}",
            task_queue=task_queue, execution_timeout=spec.timeout * 2 + spec.every + spec.every,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=spec.every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def sync_check_schedules(client: Client, checks: Sequence[CheckSpec], task_queue: str,
                               prefix: str = CHECK_SCHEDULE_PREFIX) -> list[str]:
    """Create or update a schedule per check; delete the ones (under ``prefix``) no longer configured."""
    wanted = {check_schedule_id(c.name): c for c in checks}
    for sid, spec in wanted.items():
        schedule = schedule_for(spec, task_queue)
        try:
            await client.create_schedule(sid, schedule)
            log.info("uptime check %s: schedule created (every %s)", spec.name, spec.every)
        except ScheduleAlreadyRunningError:
            def replace(_: ScheduleUpdateInput, schedule: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=schedule)

            await client.get_schedule_handle(sid).update(replace)
    async for listed in await client.list_schedules():
        if listed.id.startswith(prefix) and listed.id not in wanted:
            await client.get_schedule_handle(listed.id).delete()
            log.info("uptime check schedule %s deleted: no longer configured", listed.id)
    return sorted(wanted)
