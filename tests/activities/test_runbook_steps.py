"""Each automated step kind against the stand-in platform: success, failure, timeout,
what may be retried, secrets, and the claim that stops an attempt from acting twice."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.testing import ActivityEnvironment

from tests.standin import RunningPlatform, running_platform
from warroom.activities.runbook import RunbookActivities
from warroom.models.runbook import StepOutcome, StepRequest, parse_runbook, step_key
from warroom.models.tables import RunbookStepClaim
from warroom.runbooks.steps import RunbookConfig

TOKEN = "tok-5ecret-value"


def step(definition: dict[str, Any], params: dict[str, Any] | None = None, attempt: int = 1) -> StepRequest:
    params = params or {}
    declared = {name: {"type": "string", "pattern": ".*", "required": True} for name in params}
    rb = parse_runbook(
        {"title": "t", "when_to_use": "tests", "parameters": declared, "steps": [definition]}, "t", "test"
    )
    return StepRequest(
        key=step_key(7, 1, 1, attempt), incident_number=7, run=1, step_index=1, attempt=attempt,
        step=rb.steps[0], params=params,
    )


def http(path: str, method: str = "POST", **extra: Any) -> dict[str, Any]:
    return {"name": "call", "kind": "http", "endpoint": "platform", "method": method, "path": path,
            "headers": {"Authorization": "Bearer {{ secret.token }}"}, **extra}


def shell(*argv: str, **extra: Any) -> dict[str, Any]:
    return {"name": "cmd", "kind": "shell", "argv": list(argv), **extra}


@pytest.fixture
def secured() -> Any:
    with running_platform(token=TOKEN) as running:
        yield running


def acts(engine: Engine, running: RunningPlatform | None = None, **endpoints: str) -> RunbookActivities:
    urls = {"platform": running.url} if running else {}
    return RunbookActivities(engine, RunbookConfig(endpoints=urls | endpoints, secrets={"token": TOKEN}))


async def run(fn: Any, req: StepRequest, env: ActivityEnvironment | None = None) -> StepOutcome:
    return await (env or ActivityEnvironment()).run(fn, req)


def claims(engine: Engine) -> list[RunbookStepClaim]:
    with Session(engine) as session:
        return list(session.scalars(select(RunbookStepClaim).order_by(RunbookStepClaim.key)))


# --- http ---------------------------------------------------------------------------------


async def test_http_step_calls_the_platform_with_the_secret_and_never_records_it(
    engine: Engine, secured: RunningPlatform
) -> None:
    secured.break_("deploy")
    outcome = await run(acts(engine, secured).http_step, step(http("/deployment/rollback")))
    assert outcome.ok, outcome
    assert "HTTP 200" in outcome.summary and '"rolled_back_from": "2024.11.3"' in outcome.output
    assert secured.state.deployments[-1].version == "2024.11.2"
    # Each step carries a stable Idempotency-Key (incident, run, step), the same for all its attempts.
    assert [c["key"] for c in secured.calls()] == ["incident-7/run-1/step-1"]
    recorded = outcome.model_dump_json() + str([c.outcome for c in claims(engine)])
    assert TOKEN not in recorded


async def test_http_step_without_the_secret_is_refused_by_the_platform(
    engine: Engine, secured: RunningPlatform
) -> None:
    activities = RunbookActivities(engine, RunbookConfig(endpoints={"platform": secured.url}, secrets={"token": "x"}))
    outcome = await run(activities.http_step, step(http("/service/restart")))
    assert not outcome.ok and not outcome.retryable and "HTTP 401" in outcome.summary
    assert secured.state.restarts == 0


async def test_an_unexpected_4xx_fails_for_good(engine: Engine, platform: RunningPlatform) -> None:
    req = step(http("/flags/{{ flag }}", method="PUT", body={"enabled": False}), {"flag": "no-such-flag"})
    outcome = await run(acts(engine, platform).http_step, req)
    assert not outcome.ok and not outcome.retryable
    assert "HTTP 404" in outcome.summary and "no feature flag named no-such-flag" in outcome.output


async def test_a_5xx_may_be_retried(engine: Engine, platform: RunningPlatform) -> None:
    platform.chaos(fail_next=1)
    outcome = await run(acts(engine, platform).http_step, step(http("/service/restart")))
    assert not outcome.ok and outcome.retryable and "HTTP 503" in outcome.summary


async def test_expected_statuses_are_configurable(engine: Engine, platform: RunningPlatform) -> None:
    req = step(http("/health", method="GET", expect_status=[503]))
    platform.break_("crash")
    assert (await run(acts(engine, platform).http_step, req)).ok


async def test_an_unanswered_write_is_in_doubt_and_never_repeated(engine: Engine, platform: RunningPlatform) -> None:
    platform.chaos(delay_seconds=1.5)
    started = time.monotonic()
    outcome = await run(acts(engine, platform).http_step, step(http("/service/restart", timeout="0.3s")))
    assert time.monotonic() - started < 1.4
    assert not outcome.ok and outcome.in_doubt and not outcome.retryable
    assert "may have been applied" in outcome.summary
    read_step = step(http("/deployment", method="GET", timeout="0.3s"), attempt=2)
    read = await run(acts(engine, platform).http_step, read_step)
    assert not read.ok and read.retryable, "a read that timed out may simply be repeated"


async def test_an_unreachable_platform_may_be_retried(engine: Engine) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = await run(acts(engine, platform=f"http://127.0.0.1:{port}").http_step,
                        step(http("/service/restart")))
    assert not outcome.ok and outcome.retryable and "cannot connect" in outcome.summary


async def test_an_unconfigured_endpoint_is_named(engine: Engine) -> None:
    outcome = await run(acts(engine).http_step, step(http("/service/restart")))
    assert not outcome.ok and not outcome.retryable and "endpoint 'platform' is not configured" in outcome.summary


# --- the claim: an attempt never acts twice -------------------------------------------------


async def test_a_repeated_attempt_returns_the_recorded_outcome_without_acting(
    engine: Engine, platform: RunningPlatform
) -> None:
    platform.break_("deploy")
    platform.break_("deploy")
    activities = acts(engine, platform)
    req = step(http("/deployment/rollback"))
    first = await run(activities.http_step, req)
    again = await run(activities.http_step, req)  # Temporal retried: the first answer was lost
    assert first.ok and again == first
    assert len(platform.calls("/deployment/rollback")) == 1
    assert len(platform.state.deployments) == 3, "rolled back once, not twice"


def _interrupted(engine: Engine, req: StepRequest) -> None:
    with Session(engine) as session, session.begin():
        session.add(RunbookStepClaim(
            key=req.key, incident_number=7, run=1, step_index=1, attempt=1, status="running",
            claimed_at=datetime.now(UTC),
        ))


async def test_an_interrupted_attempt_is_not_repeated_unless_the_step_is_idempotent(
    engine: Engine, platform: RunningPlatform
) -> None:
    platform.break_("deploy")
    req = step(http("/deployment/rollback"))
    _interrupted(engine, req)  # a worker died after claiming, before recording the outcome
    outcome = await run(acts(engine, platform).http_step, req)
    assert not outcome.ok and outcome.in_doubt and "not repeated" in outcome.summary
    assert platform.calls() == []
    assert claims(engine)[0].status == "unconfirmed"

    safe = step(http("/maintenance", method="PUT", body={"enabled": True}, idempotent=True), attempt=1)
    safe = safe.model_copy(update={"key": step_key(7, 1, 2, 1), "step_index": 2})
    _interrupted(engine, safe)
    outcome = await run(acts(engine, platform).http_step, safe)
    assert outcome.ok and platform.state.maintenance
    assert [c["key"] for c in platform.calls("/maintenance")] == ["incident-7/run-1/step-2"]

    # A GET only reads: repeating it is safe, so an interrupted one is repeated, not left in doubt.
    read = step(http("/deployment", method="GET"))
    read = read.model_copy(update={"key": step_key(7, 1, 3, 1), "step_index": 3})
    _interrupted(engine, read)
    outcome = await run(acts(engine, platform).http_step, read)
    assert outcome.ok and '"version": "2024.11.3"' in outcome.output, outcome


# --- shell ---------------------------------------------------------------------------------


async def test_shell_step_runs_argv_without_a_shell(engine: Engine) -> None:
    hostile = "a b; echo INJECTED $(id) `id` | cat > /tmp/x"
    outcome = await run(acts(engine).shell_step, step(shell("printf", "[%s]\\n", "{{ v }}"), {"v": hostile}))
    assert outcome.ok, outcome
    assert outcome.output == f"[{hostile}]\n", "one argument, printed verbatim, nothing executed"
    assert "exited with 0" in outcome.summary


async def test_shell_step_gets_its_own_environment_with_secrets_blanked(engine: Engine, monkeypatch: Any) -> None:
    monkeypatch.setenv("WORKER_ONLY_SECRET", "do-not-pass-on")
    req = step(shell("env", env={"API_TOKEN": "{{ secret.token }}"}))
    outcome = await run(acts(engine).shell_step, req)
    assert outcome.ok
    assert "WORKER_ONLY_SECRET" not in outcome.output
    assert "API_TOKEN=***" in outcome.output and TOKEN not in outcome.output
    assert "WARROOM_IDEMPOTENCY_KEY=incident-7/run-1/step-1" in outcome.output


async def test_a_failing_command_may_be_retried_and_shows_its_output(engine: Engine) -> None:
    outcome = await run(acts(engine).shell_step, step(shell("sh", "-c", "echo broken >&2; exit 3")))
    assert not outcome.ok and outcome.retryable
    assert "exited with 3" in outcome.summary and "broken" in outcome.output


async def test_a_command_past_its_timeout_is_killed_with_its_children(engine: Engine) -> None:
    seconds = f"30.{os.getpid()}{time.monotonic_ns() % 10_000}"  # unique, to find the process
    req = step(shell("sh", "-c", f"sleep {seconds} & wait", timeout="0.5s"))
    started = time.monotonic()
    outcome = await run(acts(engine).shell_step, req)
    assert time.monotonic() - started < 5
    assert not outcome.ok and outcome.in_doubt and "did not finish within 0.5 s" in outcome.summary
    await asyncio.sleep(0.2)
    assert not _processes_with(f"sleep\x00{seconds}"), "the background sleep was killed too"


async def test_a_missing_program_is_named(engine: Engine) -> None:
    outcome = await run(acts(engine).shell_step, step(shell("no-such-tool-xyz", "arg")))
    assert not outcome.ok and not outcome.retryable
    assert "program not found on the worker: no-such-tool-xyz" in outcome.summary


async def test_long_output_is_trimmed(engine: Engine) -> None:
    script = "echo FIRST; head -c 200000 /dev/zero | tr '\\0' x; echo; echo LAST"
    outcome = await run(acts(engine).shell_step, step(shell("sh", "-c", script)))
    assert outcome.ok and len(outcome.output) < 9000
    assert outcome.output.startswith("FIRST") and outcome.output.rstrip().endswith("LAST")


def _processes_with(text: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                continue
    return found


# --- wait_until_healthy -----------------------------------------------------------------------


def wait(**extra: Any) -> dict[str, Any]:
    return {"name": "wait", "kind": "wait_until_healthy", "endpoint": "platform", "interval": "0.1s",
            "expect_json": {"status": "ok"}, **extra}


async def test_wait_until_healthy_polls_with_heartbeats_until_the_platform_recovers(
    engine: Engine, platform: RunningPlatform
) -> None:
    platform.break_("crash")
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)

    async def recover() -> None:
        await asyncio.sleep(0.5)
        platform.repair()

    fixer = asyncio.ensure_future(recover())
    outcome = await run(acts(engine, platform).wait_step, step(wait(timeout="5s")), env)
    await fixer
    assert outcome.ok and "healthy after" in outcome.summary
    assert beats and beats[-1][0]["last"] == "HTTP 503" and beats[-1][0]["polls"] >= 2


async def test_wait_until_healthy_fails_at_its_timeout_with_the_last_problem(
    engine: Engine, platform: RunningPlatform
) -> None:
    platform.break_("database")
    started = time.monotonic()
    outcome = await run(acts(engine, platform).wait_step, step(wait(timeout="0.6s")))
    assert 0.5 < time.monotonic() - started < 3
    assert not outcome.ok and "not healthy within 0.6 s" in outcome.summary
    assert "HTTP 503" in outcome.summary and "db-a is unreachable" in outcome.output


async def test_a_resumed_wait_keeps_the_original_deadline(engine: Engine, platform: RunningPlatform) -> None:
    platform.break_("database")
    env = ActivityEnvironment()
    previous = [{"started_at": time.time() - 60, "polls": 40}]
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=previous)
    started = time.monotonic()
    outcome = await run(acts(engine, platform).wait_step, step(wait(timeout="30s")), env)
    assert time.monotonic() - started < 2, "the 30 s ran out on the worker that died"
    assert not outcome.ok and "not healthy within 30 s" in outcome.summary

