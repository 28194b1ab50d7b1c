"""Start-up waits for the database and Temporal, with a logged backoff, then gives up clearly."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from warroom import migrations
from warroom.api.app import create_app
from warroom.models.tables import make_engine
from warroom.settings import Settings
from warroom.startup import DependencyUnavailable, backoff, open_read_model, wait_for_database, wait_for_temporal


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_backoff_grows_then_levels_off() -> None:
    delays = backoff()
    assert [next(delays) for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_waits_for_a_database_that_comes_up_later(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "not-yet"
    engine = make_engine(f"sqlite:///{folder / 'read.db'}")
    fake = FakeTime()

    def sleep(seconds: float) -> None:
        fake.sleep(seconds)
        if len(fake.sleeps) == 3:
            folder.mkdir()  # the "database" becomes reachable during the third pause

    with caplog.at_level(logging.INFO, logger="warroom.startup"):
        wait_for_database(engine, timeout=60, sleep=sleep, clock=fake.clock)
    engine.dispose()
    assert fake.sleeps == [0.5, 1.0, 2.0]
    waiting = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(waiting) == 3 and "waiting for the database" in waiting[0].getMessage()
    assert "answers" in caplog.records[-1].getMessage()


def test_gives_up_on_the_database_after_the_timeout_without_showing_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine(f"postgresql+psycopg://warroom:s3cret-pw@127.0.0.1:{closed_port()}/warroom")
    fake = FakeTime()
    with caplog.at_level(logging.INFO, logger="warroom.startup"):
        with pytest.raises(DependencyUnavailable, match="did not answer within 10 s") as err:
            wait_for_database(engine, timeout=10, sleep=fake.sleep, clock=fake.clock)
    engine.dispose()
    assert sum(fake.sleeps) <= 10
    assert len(fake.sleeps) >= 3
    assert "s3cret-pw" not in str(err.value)
    assert all("s3cret-pw" not in r.getMessage() for r in caplog.records)
    assert "***" in caplog.records[0].getMessage()


def test_open_read_model_creates_the_default_data_dir_and_migrates(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "fresh" / "var")
    engine = open_read_model(settings)
    try:
        assert migrations.current(engine) == migrations.head()
        assert (tmp_path / "fresh" / "var" / "warroom.db").exists()
    finally:
        engine.dispose()


async def test_waits_for_temporal_and_its_namespace(temporal_env: WorkflowEnvironment) -> None:
    target = temporal_env.client.service_client.config.target_host
    client = await wait_for_temporal(Settings(temporal_address=target, startup_timeout_seconds=5))
    assert client.namespace == "default"


async def test_gives_up_on_an_unknown_namespace(
    temporal_env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    target = temporal_env.client.service_client.config.target_host
    settings = Settings(temporal_address=target, temporal_namespace="no-such-namespace", startup_timeout_seconds=3)
    fake = FakeTime()

    async def sleep(seconds: float) -> None:
        fake.sleep(seconds)

    with caplog.at_level(logging.INFO, logger="warroom.startup"):
        with pytest.raises(DependencyUnavailable, match="namespace no-such-namespace"):
            await wait_for_temporal(settings, sleep=sleep, clock=fake.clock)
    assert fake.sleeps == [0.5, 1.0]  # the next pause (2 s) would pass the 3 s limit
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "waiting for Temporal at " + target + ", namespace no-such-namespace"
    ] * 2


async def test_gives_up_on_temporal_that_never_answers() -> None:
    settings = Settings(temporal_address=f"127.0.0.1:{closed_port()}", startup_timeout_seconds=1.2)
    with pytest.raises(DependencyUnavailable, match="did not answer within 1.2 s"):
        await wait_for_temporal(settings)


async def test_the_api_starts_before_temporal_and_turns_healthy_once_it_answers(tmp_path: Path) -> None:
    """API replicas do not block on Temporal: /healthz says 503 until it answers, then 200."""
    port = closed_port()
    app = create_app(Settings(temporal_address=f"127.0.0.1:{port}", data_dir=tmp_path))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            before = await http.get("/healthz")
            server = subprocess.Popen(
                [str(Path(sys.executable).parent / "temporal"), "server", "start-dev", "--headless",
                 "--ip", "127.0.0.1", "--port", str(port), "--log-level", "error"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            try:
                for _ in range(60):
                    after = await http.get("/healthz")
                    if after.status_code == 200:
                        break
                    await asyncio.sleep(0.5)
            finally:
                server.terminate()
                server.wait(timeout=30)
    assert before.status_code == 503 and before.json()["temporal"].startswith("unreachable")
    assert after.status_code == 200
