"""The worker's container health check: a file it refreshes while Temporal and the database answer."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from warroom import worker
from warroom.models.tables import make_engine


def test_fresh_stale_and_missing_files(tmp_path: Path) -> None:
    health = tmp_path / "health"
    assert not worker.health_file_fresh(health)
    health.touch()
    assert worker.health_file_fresh(health)
    old = time.time() - 4 * worker.HEALTH_INTERVAL_SECONDS
    os.utime(health, (old, old))
    assert not worker.health_file_fresh(health)


def test_the_healthcheck_command_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    health = tmp_path / "health"
    monkeypatch.setenv("WARROOM_HEALTH_FILE", str(health))
    with pytest.raises(SystemExit) as missing:
        worker.main(["--healthcheck"])
    health.touch()
    with pytest.raises(SystemExit) as fresh:
        worker.main(["--healthcheck"])
    assert (missing.value.code, fresh.value.code) == (1, 0)


async def refreshes(client: Client, engine: Engine, path: Path) -> bool:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.keep_health_file(client, engine, path, stop))
    await asyncio.sleep(0.3)
    stop.set()
    await task
    return path.exists()


async def test_the_file_is_refreshed_only_while_both_dependencies_answer(
    client: Client, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "HEALTH_INTERVAL_SECONDS", 0.1)
    assert await refreshes(client, engine, tmp_path / "ok")
    gone = make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'read.db'}")
    assert not await refreshes(client, gone, tmp_path / "database-down")
    gone.dispose()
