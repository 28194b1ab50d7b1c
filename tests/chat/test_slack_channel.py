"""The incident channel on the real Temporal dev server, the real slack_sdk and a local fake Slack.

- declaring creates one channel named after the incident, invites who is paged,
  pins a status message and mirrors the timeline;
- the pinned message follows a severity change and a role assignment (chat.update);
- a Slack outage during declaration blocks nothing: pages go out, the status
  update is taken, the timeline says Slack failed, and the channel catches up
  on its own once Slack answers again;
- a refused bot token is reported once, and tried again only at the policy's retry pace;
- a runbook run's start, steps and end reach the channel.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from tests.conftest import fast_policy, running_worker
from tests.fake_slack import BOT_TOKEN, FakeSlack
from tests.workflow.helpers import eventually, refused, sent, start_incident, state
from warroom.activities.chat import ChatActivities, SlackConfig
from warroom.models.ids import runbook_run_workflow_id
from warroom.models.incident import NoteInput, PublicPhase, Role, RoleInput, SeverityInput, StatusUpdateInput
from warroom.models.runbook import RunbookRunInput, StepDecisionInput, StepStatus, parse_runbook
from warroom.models.severity import Severity
from warroom.workflows import IncidentWorkflow, RunbookRunWorkflow

PEOPLE = {
    "alice": {"name": "Alice Ng", "sms": "+15005550006", "slack": "U0ALICE"},
    "bob": {"name": "Bob Ruiz", "sms": "+15005550007"},
    "erin": {"name": "Erin Cho", "sms": "+15005550008", "slack": "U0ERIN"},
}


def policy() -> Any:
    # Long ack timeout: only level 1 (alice) is paged during a test.
    return fast_policy(people=PEOPLE, ack_timeout="1h", first_status_within="1h", chat_retry_every="1s")


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    fake.url = fake.start()  # type: ignore[attr-defined]
    yield fake
    fake.stop()


def chat(engine: Engine, slack: FakeSlack, token: str = BOT_TOKEN) -> ChatActivities:
    config = SlackConfig(token=token, api_url=slack.url, timeout=5, users={"bob": "U0BOB"})  # type: ignore[attr-defined]
    return ChatActivities(engine, config, [], site_url="https://warroom.test", temporal_ui="https://temporal.test")


async def test_declaring_makes_a_channel_whose_pinned_status_follows_severity_and_roles(
    client: Client, primary_engine: Engine, slack: FakeSlack
) -> None:
    async with running_worker(client, primary_engine, extra=chat(primary_engine, slack).all()) as h:
        handle, number = await start_incident(h, title="DNS: changes publish slowly!", policy=policy(),
                                              relay=["slack"])
        channel = await slack.wait(slack.only_channel, what="the channel")
        assert channel.name == f"inc-{number}-dns-changes-publish-slowly"
        await slack.wait(lambda: channel.members == ["U0ALICE"], what="alice (paged) invited")
        pinned = await slack.wait(lambda: slack.pinned_text(channel), what="a pinned status")
        for part in ("triggered", "SEV-2", "none assigned yet", "acknowledge by", "Status page says:* investigating",
                     f"https://warroom.test/api/incidents/{number}", f"https://temporal.test/namespaces/default/"):
            assert part in pinned
        await slack.wait(lambda: any("Declared SEV-2" in t for t in slack.texts(channel)), what="declared mirrored")
        await slack.wait(lambda: any("Paged level 1" in t for t in slack.texts(channel)), what="the page mirrored")

        await handle.execute_update(IncidentWorkflow.change_severity,
                                    SeverityInput(severity=Severity.SEV1, by="alice", reason="all regions"))
        await slack.wait(lambda: "SEV-1" in slack.pinned_text(channel), what="the pinned message showing SEV-1")
        await handle.execute_update(IncidentWorkflow.assign_role,
                                    RoleInput(role=Role.INCIDENT_COMMANDER, person="bob", by="alice"))
        await slack.wait(lambda: "Incident Commander: bob" in slack.pinned_text(channel), what="the IC pinned")
        await slack.wait(lambda: "U0BOB" in channel.members, what="bob (mapped by settings) invited")
        # The channel shows where the public page stands once a responder moves it.
        await handle.execute_update(IncidentWorkflow.post_status_update, StatusUpdateInput(
            message="A stuck publisher was found; restarting it.", author="alice", phase=PublicPhase.IDENTIFIED))
        await slack.wait(lambda: "Status page says:* identified" in slack.pinned_text(channel),
                         what="the pinned message showing the phase")
        await slack.wait(lambda: any("bob is Incident Commander" in t for t in slack.texts(channel)))

        assert len(slack.called("conversations.create")) == 1
        assert len(channel.pinned) == 1, "one status message, edited in place"
        assert len(slack.called("chat.update")) >= 2
        assert all(c.token == BOT_TOKEN for c in slack.calls)
        async def caught_up() -> Any:
            s = await state(handle)
            return s if s.relay.targets["slack"].seq == s.timeline[-1].seq else None

        s = await eventually(caught_up, what="the channel caught up")
        assert any(e.kind == "slack" and f"#{channel.name} created" in e.text for e in s.timeline)
        # Each entry went out once: as many posts as entries (less the per-attempt delivery lines).
        assert len(slack.texts(channel)) == len([e for e in s.timeline if e.kind != "notify"])


async def test_a_slack_outage_during_declaration_still_pages_and_takes_the_status_update(
    client: Client, primary_engine: Engine, slack: FakeSlack
) -> None:
    slack.down = True
    async with running_worker(client, primary_engine, extra=chat(primary_engine, slack).all()) as h:
        handle, number = await start_incident(h, policy=policy(), relay=["slack"])
        await eventually(lambda: sent(h, number, "page", "alice"), what="alice paged while Slack is down")
        await handle.execute_update(IncidentWorkflow.post_status_update,
                                    StatusUpdateInput(message="Investigating slow DNS publishing", author="alice"))

        async def failing() -> Any:
            s = await state(handle)
            return s if s.relay.targets["slack"].failing else None

        s = await eventually(failing, timeout=20, what="the Slack failure shown")
        assert s.status_updates[-1].message == "Investigating slow DNS publishing"
        failures = [e for e in s.timeline if e.kind == "slack" and "failing" in e.text]
        assert len(failures) == 1, failures
        assert "Slack is failing (conversations.create answered service_unavailable); the response goes on" in (
            failures[0].text)
        assert not slack.channels and slack.calls and all(c.status == 503 for c in slack.calls)

        slack.down = False  # Slack is back: no command needed, the retry timer catches up
        channel = await slack.wait(slack.only_channel, within=20, what="the channel after the outage")
        posted = "Public update by alice (investigating): Investigating"
        await slack.wait(lambda: any(posted in t for t in slack.texts(channel)), what="the backlog posted")
        await slack.wait(lambda: any("Slack is failing" in t for t in slack.texts(channel)), what="the failure noted")

        async def recovered() -> Any:
            s = await state(handle)
            return not s.relay.targets["slack"].failing and any("answers again" in e.text for e in s.timeline)

        await eventually(recovered, timeout=20, what="the recovery on the timeline")
        assert "Investigating" in (await state(handle)).status_updates[-1].message


async def test_a_refused_bot_token_is_reported_once_and_the_incident_goes_on(
    client: Client, primary_engine: Engine, slack: FakeSlack
) -> None:
    async with running_worker(client, primary_engine, extra=chat(primary_engine, slack, "xoxb-wrong").all()) as h:
        handle, number = await start_incident(h, policy=policy(), relay=["slack"])

        async def reported() -> Any:
            s = await state(handle)
            return [e for e in s.timeline if e.kind == "slack"]

        entries = await eventually(reported, timeout=15, what="the refusal on the timeline")
        assert "refused the bot token (invalid_auth)" in entries[0].text
        await eventually(lambda: sent(h, number, "page", "alice"), what="alice paged anyway")
        # Not retryable: one call per try (not three). While failing, a try follows each new
        # timeline entry or chat_retry_every (1 s here), whichever comes first.
        s = await state(handle)
        assert s.relay.targets["slack"].failing
        assert all(c.method == "conversations.create" for c in slack.calls)
        seconds = (datetime.now(UTC) - s.declared_at).total_seconds()
        tries = len(s.timeline) + seconds + 2
        assert 1 <= len(slack.calls) <= tries, (len(slack.calls), len(s.timeline), seconds)


async def test_the_channel_keeps_following_after_a_continue_as_new(
    client: Client, primary_engine: Engine, slack: FakeSlack
) -> None:
    small = fast_policy(people=PEOPLE, ack_timeout="1h", first_status_within="1h", chat_retry_every="1s",
                        history_event_limit=120)
    async with running_worker(client, primary_engine, extra=chat(primary_engine, slack).all()) as h:
        handle, number = await start_incident(h, policy=small, relay=["slack"])
        channel = await slack.wait(slack.only_channel, what="the channel")
        first_run = (await handle.describe()).run_id
        for i in range(12):
            await handle.execute_update(IncidentWorkflow.post_status_update,
                                        StatusUpdateInput(message=f"Update number {i}", author="alice"))
        await eventually(lambda: _run_changed(handle, first_run), timeout=20, what="a continue-as-new")
        await handle.execute_update(IncidentWorkflow.assign_role,
                                    RoleInput(role=Role.SCRIBE, person="erin", by="alice"))
        await slack.wait(lambda: "Scribe: erin" in slack.pinned_text(channel), what="the pin after the new run")
        mirrored = "Public update by alice (investigating): Update number"
        await slack.wait(lambda: sum(mirrored in t for t in slack.texts(channel)) == 12,
                         what="every update mirrored once")
        assert len(slack.called("conversations.create")) == 1 and len(channel.pinned) == 1


async def _run_changed(handle: Any, first: str) -> bool:
    return (await handle.describe()).run_id != first


async def test_a_marked_message_is_noted_once_and_only_for_known_people(harness: Any) -> None:
    handle, _ = await start_incident(harness, policy=policy())
    note = NoteInput(text="The resolver cache was flushed at 02:31", by="alice", source="Slack reaction",
                     ref="C1/1800000001.000100")
    first = await handle.execute_update(IncidentWorkflow.add_note, note)
    again = await handle.execute_update(IncidentWorkflow.add_note, note)
    assert first.changed and not again.changed
    assert "empty" in await refused(handle.execute_update(IncidentWorkflow.add_note, note.model_copy(
        update={"text": "  ", "ref": None})))
    assert "'mallory' is not a known person" in await refused(handle.execute_update(
        IncidentWorkflow.add_note, note.model_copy(update={"by": "mallory", "ref": None})))
    s = await state(handle)
    notes = [e for e in s.timeline if e.kind == "note"]
    assert [(e.text, e.actor) for e in notes] == [
        ("Note from alice via Slack reaction: The resolver cache was flushed at 02:31", "alice")]


async def test_a_runbook_run_shows_its_steps_in_the_channel(
    client: Client, primary_engine: Engine, slack: FakeSlack
) -> None:
    """Operators follow a mitigation from the channel: the run's start, each step's result and
    the run's end are mirrored like any timeline entry."""
    rb = parse_runbook({"title": "Check the panel by hand", "when_to_use": "in tests", "steps": [
        {"name": "look at the error graph", "kind": "manual", "instruction": "Open the dashboard.",
         "timeout": "1h"}]}, "check-panel", "check-panel.yaml")
    async with running_worker(client, primary_engine, extra=chat(primary_engine, slack).all()) as h:
        handle, number = await start_incident(h, title="Control panel errors", policy=policy(), relay=["slack"])
        channel = await slack.wait(slack.only_channel, what="the channel")
        await handle.execute_update(IncidentWorkflow.run_runbook, RunbookRunInput(runbook=rb, actor="alice"))
        run = client.get_workflow_handle(runbook_run_workflow_id(number, 1))

        async def waiting() -> bool:
            view = await run.query(RunbookRunWorkflow.view)
            return view.steps[0].status == StepStatus.WAITING

        await eventually(waiting, what="the manual step waiting")
        await run.execute_update(RunbookRunWorkflow.confirm_step,
                                 StepDecisionInput(step=1, actor="erin", note="graphs flat"))

        def mirrored(*words: str) -> bool:
            return any(all(w in t for w in words) for t in slack.texts(channel))

        await slack.wait(lambda: mirrored("Check the panel by hand", "alice"), what="the run's start mirrored")
        await slack.wait(lambda: mirrored("look at the error graph", "erin", "graphs flat"),
                         what="the confirmed step mirrored")
        await slack.wait(lambda: mirrored("Check the panel by hand", "succeeded"), what="the run's end mirrored")
