"""Outgoing webhooks: each incident event reaches each endpoint once, signed, in order,
and a receiver that fails for a while gets everything once it answers again."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from tests.conftest import fast_policy, running_worker
from tests.workflow.helpers import eventually, start_incident, state
from warroom.activities.chat import ChatActivities
from warroom.models.chat import WebhookEndpoint, verify_webhook
from warroom.models.incident import AckInput
from warroom.models.tables import WebhookDeliveryRow
from warroom.workflows import IncidentWorkflow

SECRET = "receiver-shared-secret-0123456789"


@dataclass
class Receiver:
    """A webhook receiver that checks signatures the way the README tells integrators to."""

    secret: str
    fail_next: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    seen_ids: list[str] = field(default_factory=list)
    attempts: int = 0
    url: str = ""

    def handle(self, headers: Any, body: bytes) -> int:
        self.attempts += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return 503
        ts, sig = headers.get("X-Warroom-Timestamp", ""), headers.get("X-Warroom-Signature", "")
        if not verify_webhook(self.secret, ts, sig, body, now=time.time()):
            self.refused.append(headers.get("X-Warroom-Event-Id", ""))
            return 401
        event = json.loads(body)
        assert headers.get("X-Warroom-Event-Id") == event["id"] == headers.get("Idempotency-Key")
        self.seen_ids.append(event["id"])
        self.accepted.append(event)
        return 204


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(SECRET)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = rec.handle(self.headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), daemon=True).start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/warroom"
    yield rec
    server.shutdown()
    server.server_close()


def hooks(engine: Engine, *endpoints: WebhookEndpoint) -> ChatActivities:
    return ChatActivities(engine, None, list(endpoints), site_url="https://warroom.test",
                          temporal_ui="https://temporal.test")


async def test_every_event_reaches_the_receiver_once_signed_even_after_it_failed(
    client: Client, primary_engine: Engine, receiver: Receiver
) -> None:
    receiver.fail_next = 2  # the first deliveries meet a receiver that is restarting
    teams = WebhookEndpoint(name="teams", url=receiver.url, secret=SECRET)
    policy = fast_policy(ack_timeout="1h", first_status_within="1h", chat_retry_every="1s")
    async with running_worker(client, primary_engine, extra=hooks(primary_engine, teams).all()) as h:
        handle, number = await start_incident(h, policy=policy, relay=["webhooks"])
        await eventually(lambda: any(e["type"] == "incident.page" for e in receiver.accepted), timeout=20,
                         what="the declaration and the page delivered")
        await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice", via="api"))
        ack = await eventually(lambda: [e for e in receiver.accepted if e["type"] == "incident.ack"], timeout=20,
                               what="the ack delivered")
        assert ack[0]["incident"]["number"] == number
        assert ack[0]["incident"]["status"] == "acknowledged"
        assert ack[0]["entry"]["actor"] == "alice"

        s = await state(handle)
        assert receiver.attempts > len(receiver.accepted), "the 503s were retried"
        assert not receiver.refused, "every signature verified"
        assert len(receiver.seen_ids) == len(set(receiver.seen_ids)), "no event twice"
        seqs = [int(i.rsplit("-", 1)[1]) for i in receiver.seen_ids]
        assert seqs == sorted(seqs), "in timeline order"
        assert receiver.seen_ids[0] == f"incident-{number}/timeline-1"
        assert receiver.accepted[0]["type"] == "incident.declared"
        assert not [e for e in receiver.accepted if e["type"] == "incident.notify"]
        with Session(primary_engine) as session:
            rows = session.scalars(select(WebhookDeliveryRow).where(WebhookDeliveryRow.incident_number == number))
            assert {r.event_key for r in rows if r.status == "delivered"} == set(receiver.seen_ids)
        assert s.relay.targets["webhooks"].failing is False


async def test_a_receiver_with_another_secret_refuses_and_is_not_sent_the_event_again(
    client: Client, primary_engine: Engine, receiver: Receiver
) -> None:
    wrong = WebhookEndpoint(name="mattermost", url=receiver.url, secret="not-the-receivers-secret")
    policy = fast_policy(ack_timeout="1h", first_status_within="1h", chat_retry_every="1s")
    async with running_worker(client, primary_engine, extra=hooks(primary_engine, wrong).all()) as h:
        handle, number = await start_incident(h, policy=policy, relay=["webhooks"])

        async def noted() -> Any:
            s = await state(handle)
            return [e for e in s.timeline if e.kind == "webhooks" and "refused" in e.text]

        entries = await eventually(noted, timeout=20, what="the refusal on the timeline")
        assert "HTTP 401" in entries[0].text
        assert receiver.refused and not receiver.accepted

        def recorded() -> list[str]:
            with Session(primary_engine) as session:
                return list(session.scalars(select(WebhookDeliveryRow.event_key).where(
                    WebhookDeliveryRow.incident_number == number)))

        # Later events may still be on their way: compare once the record has caught up with
        # what the receiver saw, then the two must agree one for one.
        keys = await eventually(lambda: (k := recorded()) and set(k) == set(receiver.refused) and k,
                                timeout=20, what="every refused event recorded")
        assert len(keys) == len(set(keys)), "each refused event recorded once"
        assert len(receiver.refused) == len(set(receiver.refused)), "each refused event sent once"
