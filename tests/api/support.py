"""Helpers of the API tests: the API in-process (httpx over ASGI, lifespan run), a real worker, the session's dev server.

Every test gets its own read model, task queue and policy file, and the
policy's people as users (tests.access: alice admin, bob operator, erin
responder): ``api.http`` acts as alice, ``api.as_("bob")`` as bob,
``api.anonymous`` as nobody. The dev server
is shared by the whole session, and workflow ids are ``incident-<number>``, so
each test's incident numbers start in a block of their own: otherwise every
test's incident #1 would be the same workflow.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import client_as, integration_secret, token_for
from tests.conftest import Harness, running_worker, start_incident_numbers_at
from tests.stack import case, write_policy
from warroom.api.app import create_app
from warroom.models.detection import load_detection
from warroom.models.policy import load_policy
from warroom.settings import Settings
from warroom.worker import build_chat

T = TypeVar("T")
_blocks = itertools.count(1)
BLOCK = 100_000


@dataclass
class Api:
    http: httpx.AsyncClient
    worker: Harness
    settings: Settings
    first_number: int
    engine: Engine
    transport: httpx.AsyncBaseTransport
    alert_secret: str
    anonymous: httpx.AsyncClient
    _exits: AsyncExitStack
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    async def as_(self, user: str) -> httpx.AsyncClient:
        """A client with an API token of ``user`` (made a responder unless tests.access says otherwise)."""
        if user not in self._clients:
            client = client_as(self.transport, token_for(self.engine, user))
            self._clients[user] = await self._exits.enter_async_context(client)
        return self._clients[user]

    async def declare(self, **body: Any) -> dict[str, Any]:
        payload = {"title": "Control panel returns 502", "severity": "SEV-2", **body}
        resp = await self.http.post("/api/incidents", json=payload)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    async def alertmanager(self, payload: bytes | dict[str, Any]) -> httpx.Response:
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return await self.http.post(
            f"/api/webhooks/alertmanager/{self.alert_secret}", content=content,
            headers={"content-type": "application/json"},
        )

    async def notifications(self, incident_id: int) -> list[dict[str, Any]]:
        resp = await self.http.get("/api/notifications", params={"incident_id": incident_id})
        assert resp.status_code == 200, resp.text
        return list(resp.json())

    async def incident(self, incident_id: int) -> dict[str, Any]:
        resp = await self.http.get(f"/api/incidents/{incident_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


async def eventually(what: str, probe: Callable[[], Awaitable[T | None]], timeout: float = 10) -> T:
    """Await ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


def firing_sample() -> dict[str, Any]:
    return dict(json.loads(case("alertmanager-v4-firing.json")))


def resolved_sample() -> dict[str, Any]:
    return dict(json.loads(case("alertmanager-v4-resolved.json")))


def seed_numbers(engine: Engine, first: int) -> None:
    """Make the allocator hand out ``first``, ``first + 1``, ... in this read model."""
    start_incident_numbers_at(engine, first)


@asynccontextmanager
async def serving(
    client: Client, engine: Engine, tmp_path: Path, policy: dict[str, Any] | None = None,
    detection: dict[str, Any] | None = None, **overrides: Any,
) -> AsyncIterator[Api]:
    """The app from ``create_app`` with its lifespan running, and a worker on its task queue.
    ``detection``: the detection configuration (alert rules, grouping, ...); ``overrides``: settings."""
    policy_file = tmp_path / "policy.yaml"
    write_policy(policy_file, **(policy or {}))
    if detection is not None:
        overrides["detection"] = tmp_path / "detection.yaml"
        overrides["detection"].write_text(json.dumps(detection))
    settings = Settings(
        data_dir=tmp_path,
        policy=policy_file,
        task_queue=f"api-{next(_blocks)}-{tmp_path.name[-12:]}",
        command_timeout_seconds=10,
        **overrides,
    )
    first = next(_blocks) * BLOCK + 1
    seed_numbers(engine, first)
    app = create_app(settings, client=client, engine=engine)
    alice, secret = token_for(engine, "alice"), integration_secret(engine)
    chat = build_chat(engine, settings).all() if settings.relay_targets else ()
    async with running_worker(client, engine, settings.task_queue, policy=load_policy(policy_file),
                              detection=load_detection(settings.detection), extra=chat) as worker:
        async with LifespanManager(app) as manager, AsyncExitStack() as exits:
            transport = httpx.ASGITransport(app=manager.app)
            http = await exits.enter_async_context(client_as(transport, alice))
            anonymous = await exits.enter_async_context(client_as(transport, None))
            yield Api(http=http, worker=worker, settings=settings, first_number=first, engine=engine,
                      transport=transport, alert_secret=secret, anonymous=anonymous, _exits=exits)


