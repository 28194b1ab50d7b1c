"""The worker process: every workflow and activity, wired from settings."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, text
from temporalio.client import Client
from temporalio.worker import Worker

from warroom.activities.incident import IncidentActivities
from warroom.activities.notify import NotifierRegistry
from warroom.logs import configure_logging
from warroom.migrations import SchemaNotCurrent
from warroom.models.policy import PolicyError, load_policy
from warroom.settings import Settings
from warroom.startup import DependencyUnavailable, open_read_model, wait_for_temporal
from warroom.workflows import WORKFLOWS

log = logging.getLogger("warroom.worker")


def build_worker(client: Client, settings: Settings, activities: IncidentActivities,
                 executor: ThreadPoolExecutor) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=activities.all(),
        activity_executor=executor,
        max_concurrent_activities=64,
        # On SIGTERM (a scale-down, a deploy) let sends in flight finish rather than cut them off.
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


def build_notifiers(settings: Settings) -> NotifierRegistry:
    return NotifierRegistry()


HEALTH_INTERVAL_SECONDS = 10.0


async def keep_health_file(client: Client, engine: Engine, path: Path, stop: asyncio.Event) -> None:
    """Touch ``path`` every few seconds while Temporal and the database both answer."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(client.service_client.check_health(), HEALTH_INTERVAL_SECONDS / 2)
            await asyncio.to_thread(_ping, engine)
        except Exception as err:  # noqa: BLE001 - unhealthy: the file goes stale
            log.warning("health check failed (%s); %s is no longer refreshed", type(err).__name__, path)
        else:
            path.touch()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEALTH_INTERVAL_SECONDS)


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def health_file_fresh(path: Path, now: float | None = None) -> bool:
    """True when the worker refreshed its health file recently enough."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age <= 3 * HEALTH_INTERVAL_SECONDS


async def run(settings: Settings) -> None:
    load_policy(settings.policy)  # refuse to start on a bad policy, naming the key
    engine = await asyncio.to_thread(open_read_model, settings)
    client = await wait_for_temporal(settings)
    activities = IncidentActivities(engine, build_notifiers(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=64) as executor:
        worker = build_worker(client, settings, activities, executor)
        log.info("worker polling task queue %s on %s", settings.task_queue, settings.temporal_target)
        async with worker:
            health = (
                asyncio.create_task(keep_health_file(client, engine, settings.health_file, stop))
                if settings.health_file is not None
                else None
            )
            await stop.wait()
            log.info("worker stopping; letting running activities finish")
            if health is not None:
                await health
    engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m warroom.worker", description="The warroom Temporal worker.")
    parser.add_argument(
        "--healthcheck",
        action="store_true",
        help="exit 0 if the running worker refreshed WARROOM_HEALTH_FILE recently, else 1 (for containers)",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    if args.healthcheck:
        if settings.health_file is None:
            sys.exit("warroom worker: set WARROOM_HEALTH_FILE to use --healthcheck")
        sys.exit(0 if health_file_fresh(settings.health_file) else 1)
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(run(settings))
    except (DependencyUnavailable, SchemaNotCurrent, PolicyError) as err:
        log.error("cannot start: %s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()
