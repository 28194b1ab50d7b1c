"""Record tests/replay/histories/slack_channel.json: an incident mirrored to Slack and webhooks.

    PYTHONPATH=$PWD .venv/bin/python -m tests.chat.record_history

Runs its own dev server, the fake Slack and a webhook receiver; the incident is
acknowledged, lowered to SEV-4, given an IC, noted and resolved
(a SEV-3 needs no postmortem, so it closes). The replay test then guards the "slack-channel" patch.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from temporalio.testing import WorkflowEnvironment

from tests.conftest import fast_policy, running_worker, temporal_binary
from tests.fake_slack import BOT_TOKEN, FakeSlack
from tests.replay.record_histories import HISTORIES, save_runs
from warroom.activities.chat import ChatActivities, SlackConfig
from warroom.models.chat import WebhookEndpoint
from warroom.models.incident import (
    AckInput,
    IncidentInput,
    NoteInput,
    ResolveInput,
    Role,
    RoleInput,
    SeverityInput,
)
from warroom.models.severity import Severity
from warroom.models.tables import create_schema, make_engine
from warroom.temporal import DATA_CONVERTER
from warroom.workflows import IncidentWorkflow


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), data_converter=DATA_CONVERTER, dev_server_log_level="error", ui=False
    )
    slack = FakeSlack()
    url = slack.start()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = WebhookEndpoint(name="receiver", url=f"http://127.0.0.1:{receiver.server_address[1]}/",
                           secret="recorded-history-secret")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/read.db")
            create_schema(engine)
            chat = ChatActivities(engine, SlackConfig(token=BOT_TOKEN, api_url=url, users={"alice": "U0ALICE"}),
                                  [hook], site_url="http://warroom.test", temporal_ui="http://ui.test")
            async with running_worker(env.client, engine, extra=chat.all()) as h:
                handle = await h.client.start_workflow(
                    IncidentWorkflow.run,
                    IncidentInput(number=7, title="Recorded scenario: slack channel", severity=Severity.SEV3,
                                  components=["dns"], relay=["slack", "webhooks"],
                                  policy=fast_policy(ack_timeout="1h", first_status_within="1h",
                                                     chat_retry_every="1s")),
                    id="replay-slack_channel",
                    task_queue=h.task_queue,
                )
                while not slack.channels or not slack.called("pins.add"):
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1)
                await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
                await handle.execute_update(IncidentWorkflow.change_severity,
                                            SeverityInput(severity=Severity.SEV4, by="alice"))
                await handle.execute_update(IncidentWorkflow.assign_role,
                                            RoleInput(role=Role.INCIDENT_COMMANDER, person="bob", by="alice"))
                await handle.execute_update(IncidentWorkflow.add_note,
                                            NoteInput(text="resolver config pushed at 02:31", by="alice",
                                                      ref="C1/1.0"))
                await asyncio.sleep(2)
                await handle.execute_update(IncidentWorkflow.resolve,
                                            ResolveInput(summary="Rolled back the resolver config", by="alice"))
                for path in await save_runs(env.client, "slack_channel", handle):
                    print(f"{path}: {path.stat().st_size // 1024} KiB", file=sys.stderr)
            engine.dispose()
    finally:
        slack.stop()
        receiver.shutdown()
        await env.shutdown()


if __name__ == "__main__":
    HISTORIES.mkdir(exist_ok=True)
    asyncio.run(main())
