"""The floor of every latency in bench/run_all.py: a bare workflow that runs one activity.

Nothing of warroom's: the activity only notes when it ran. Same server, same
sandbox settings (warroom.temporal.WORKFLOW_RUNNER) as the worker.
"""

from __future__ import annotations

import time
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_floor_activity")
async def floor_activity(started: float) -> float:
    """Seconds from the client's start call (``started``, wall clock) to this activity running."""
    return time.time() - started


@workflow.defn(name="BenchFloorWorkflow")
class FloorWorkflow:
    @workflow.run
    async def run(self, started: float) -> float:
        return await workflow.execute_activity(
            "bench_floor_activity", started, start_to_close_timeout=timedelta(seconds=30), result_type=float
        )
