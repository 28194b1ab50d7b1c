"""Start-up of a process: wait for the database and Temporal, bring the schema up to date.

In a cluster the processes start in any order: a worker may come up before
PostgreSQL accepts connections or before Temporal has registered its namespace.
Each wait retries with a growing pause (logged, with the reason) until
``startup_timeout_seconds`` has passed, and then fails with a message that says
what was missing. Nothing here keeps state between processes: every replica
reads the same settings and the same database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import DBAPIError
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from warroom import migrations
from warroom.models.tables import make_engine
from warroom.settings import Settings
from warroom.temporal import connect

log = logging.getLogger("warroom.startup")


class DependencyUnavailable(Exception):
    """The database or Temporal did not answer within the start-up timeout."""


def backoff(initial: float = 0.5, factor: float = 2.0, cap: float = 5.0) -> Iterator[float]:
    """Pauses between attempts: 0.5 s, 1 s, 2 s, 4 s, then 5 s for ever."""
    delay = initial
    while True:
        yield delay
        delay = min(delay * factor, cap)


def safe_url(url: str) -> str:
    """A database URL fit for a log line (password hidden)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is not logged at all
        return "(unparseable database URL)"


def _reason(err: BaseException) -> str:
    inner = getattr(err, "orig", None) or err
    first_line = (str(inner).strip().splitlines() or [""])[0]
    return f"{type(inner).__name__}: {first_line[:200]}" if first_line else type(inner).__name__


def wait_for_database(
    engine: Engine,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Return once the database answers a query; raise DependencyUnavailable after ``timeout`` s."""
    where = engine.url.render_as_string(hide_password=True)
    deadline = clock() + timeout
    for attempt, delay in enumerate(backoff(), start=1):
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (DBAPIError, OSError) as err:
            if clock() + delay > deadline:
                raise DependencyUnavailable(
                    f"the database at {where} did not answer within {timeout:g} s ({_reason(err)})"
                ) from None
            log.warning("waiting for the database at %s (attempt %d, %s); next try in %.1f s",
                        where, attempt, _reason(err), delay)
            sleep(delay)
            continue
        if attempt > 1:
            log.info("the database at %s answers", where)
        return


def open_read_model(settings: Settings) -> Engine:
    """The read model's engine, once the database answers and its schema is current.

    With ``auto_migrate`` (the default) the schema is upgraded here, under the
    migration lock, so any number of processes may start together. Without it,
    a database that is not at the newest revision stops start-up.
    """
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.read_model_url)
    try:
        wait_for_database(engine, settings.startup_timeout_seconds)
        if settings.auto_migrate:
            migrations.upgrade(engine)
        else:
            migrations.require_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


async def wait_for_temporal(
    settings: Settings,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Client:
    """A client, once Temporal answers and knows the namespace; DependencyUnavailable after the timeout."""
    target, namespace = settings.temporal_target, settings.temporal_namespace
    deadline = clock() + settings.startup_timeout_seconds
    for attempt, delay in enumerate(backoff(), start=1):
        try:
            client = await connect(target, namespace)
            await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
        except Exception as err:  # noqa: BLE001 - every failure to reach Temporal is retried
            if clock() + delay > deadline:
                raise DependencyUnavailable(
                    f"Temporal at {target} (namespace {namespace}) did not answer within "
                    f"{settings.startup_timeout_seconds:g} s ({_reason(err)})"
                ) from None
            log.warning("waiting for Temporal at %s, namespace %s (attempt %d, %s); next try in %.1f s",
                        target, namespace, attempt, _reason(err), delay)
            await sleep(delay)
            continue
        if attempt > 1:
            log.info("Temporal at %s answers", target)
        return client
    raise AssertionError("unreachable")
