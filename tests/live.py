"""The API served for real, on a free local port, for tests that talk HTTP to it (the CLI).

uvicorn runs in a thread with its own event loop and its own Temporal client,
exactly as a separate API process would; the worker stays in the test's loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from sqlalchemy import Engine

from tests.access import token_for
from tests.conftest import (
    Harness,
    TestDatabase,
    running_worker,
    start_incident_numbers_at,
)
from warroom.api.app import create_app
from warroom.runbooks.steps import RunbookConfig
from warroom.settings import Settings

CALM_POLICY: dict[str, Any] = {
    # Nothing falls due on its own during a test: every change comes from a command.
    "ack_timeout": "1h",
    "first_status_within": "1h",
    "update_every": {"SEV-1": "1h", "SEV-2": "1h"},
    "reminder_lead": "1m",
    "commander_within": "1h",
    "role_reminder_every": "1h",
    "postmortem_within": "2d",
    "postmortem_reminders_before": ["1d"],
    "engineering_lead": "erin",
    "people": {
        "alice": {"name": "Alice Ng", "sms": "+15005550006"},
        "bob": {"name": "Bob Ruiz", "sms": "+15005550007"},
        "erin": {"name": "Erin Cho", "email": "erin@example.com"},
    },
    "escalation": {"levels": [{"notify": ["alice"]}, {"notify": ["bob"]}], "fallback": ["erin"]},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveApi:
    url: str
    settings: Settings
    engine: Engine
    harness: Harness
    token: str
    """An admin's API token (alice)."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@asynccontextmanager
async def live_api(
    harness_client: Any, database: TestDatabase, engine: Engine, tmp_path: Path, policy: dict[str, Any] | None = None,
    runbook_config: RunbookConfig | None = None,
) -> AsyncIterator[LiveApi]:
    """A worker on a fresh task queue and the API in front of it, over ``database``; runbook
    steps reach the endpoints and secrets of ``runbook_config`` (none by default)."""
    policy_file = tmp_path / f"policy-{uuid.uuid4().hex[:6]}.yaml"
    policy_file.write_text(yaml.safe_dump(policy or CALM_POLICY), encoding="utf-8")
    # Incident numbers are workflow ids on the shared Temporal server: keep them apart.
    start_incident_numbers_at(engine, 100_000 + uuid.uuid4().int % 800_000_000)
    async with running_worker(harness_client, engine, runbook_config=runbook_config) as harness:
        port = free_port()
        settings = Settings(
            policy=policy_file,
            task_queue=harness.task_queue,
            temporal_address=harness_client.service_client.config.target_host,
            database_url=database.url,
            http_port=port,
            data_dir=tmp_path,
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, name="live-api", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            await asyncio.sleep(0.02)
        try:
            yield LiveApi(
                url=f"http://127.0.0.1:{port}", settings=settings, engine=engine, harness=harness,
                token=token_for(engine, "alice"),
            )
        finally:
            server.should_exit = True
            thread.join(timeout=10)
