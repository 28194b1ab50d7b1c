"""Faults of whole processes, on the embedded stack (dev server, worker, API as processes).

Already proven elsewhere, not repeated here:
- a worker SIGKILLed with an escalation pending, restarted after the deadline,
  escalates exactly once: tests/e2e/test_stack.py::test_killed_worker_escalates_once_after_restart;
- one incident surviving a dev-server SIGKILL: tests/e2e/test_stack.py::
  test_dev_server_restart_keeps_the_incident_and_its_deadline;
- continue-as-new before the history limit, losing no command: tests/workflow/test_continue_as_new.py.

The runbook run below is the process-level twin of
tests/workflow/test_runbook_runs.py::test_a_worker_killed_mid_run_resumes_without_repeating_a_completed_step,
which stops an in-process worker politely; here the worker process gets SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from tests.fakes import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio, Recorded
from tests.stack import Stack, case, policy_data, wait_until
from tests.standin import running_platform
from warroom.models.ids import RUNBOOK_WAIT_ACTIVITY, runbook_run_workflow_id

pytestmark = pytest.mark.slow

AM_HEADERS = {"content-type": "application/json"}
INCIDENTS = int(os.environ.get("WARROOM_FAULT_INCIDENTS", "20"))
"""Open incidents across the dev-server restart. The issue asks for 100
(``WARROOM_FAULT_INCIDENTS=100``); that takes minutes on a shared 2-core machine, so
``make test`` runs 20."""


def _notifications(stack: Stack, **params: Any) -> list[dict[str, Any]]:
    resp = stack.http.get("/api/notifications", params={"limit": 1000, **params})
    resp.raise_for_status()
    return list(resp.json())


def test_worker_killed_after_twilio_accepted_the_sms_sends_it_at_most_once(
    make_process_stack: Callable[..., Stack],
) -> None:
    twilio = FakeTwilio()
    base = twilio.start()
    try:
        stack = make_process_stack(policy_data(ack_timeout="1h"))
        stack.env.update({
            "WARROOM_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "WARROOM_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "WARROOM_TWILIO_FROM_NUMBER": FROM_NUMBER,
            "WARROOM_TWILIO_API_BASE": base,
        })
        killed = threading.Event()

        def kill_before_the_answer(rec: Recorded) -> None:
            # Twilio has accepted the message; the worker dies before it reads the answer.
            if rec.kind == "sms" and not killed.is_set():
                stack.kill("worker", signal.SIGKILL)
                killed.set()

        twilio.on_record = kill_before_the_answer
        stack.start()
        resp = stack.http.post("/api/incidents", json={"title": "Mail delivery slow", "severity": "SEV-2"})
        assert resp.status_code == 201, resp.text
        number = resp.json()["id"]
        assert killed.wait(30), "the page never reached the fake Twilio"

        stack.start_worker()

        def outcome() -> list[dict[str, Any]] | None:
            rows = [n for n in _notifications(stack, incident_id=number) if n["kind"] == "page"]
            by = {n["channel"]: n["status"] for n in rows}
            return rows if by.get("sms") == "unconfirmed" and by.get("email") == "sent" else None

        # The retried activity finds its claimed row: outcome unknown, not sent again;
        # the page falls back to alice's email (the console here) instead.
        rows = wait_until("the unconfirmed SMS and the email fallback", lambda: outcome(), timeout=60, interval=0.3)
        assert sorted(n["channel"] for n in rows) == ["email", "sms"]
        time.sleep(1)
        assert [r.to for r in twilio.records if r.kind == "sms"] == ["+15005550006"]
        text = " ".join(e["text"] for e in stack.incident(number)["timeline"])
        assert "outcome unconfirmed" in text
    finally:
        twilio.stop()


def _declare(stack: Stack, i: int) -> int:
    resp = stack.http.post("/api/incidents", json={"title": f"Fault incident {i}", "severity": "SEV-2"})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def test_dev_server_down_with_open_incidents_alerts_503_then_timers_fire_once(
    make_process_stack: Callable[..., Stack],
) -> None:
    level_one = 25 + INCIDENTS // 10  # seconds: time to declare them all before the first deadline
    stack = make_process_stack(policy_data(escalation={
        "levels": [{"notify": ["alice"], "ack_timeout": f"{level_one}s"}, {"notify": ["bob"], "ack_timeout": "1h"}],
        "repeat": 0, "fallback": ["erin"],
    }, page_cap="0s"))  # every incident pages alice: no cap holding them back
    stack.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(lambda i: _declare(stack, i), range(INCIDENTS)))
    assert len(set(numbers)) == INCIDENTS

    started = time.monotonic()

    def all_paged() -> bool:
        pages = [n for n in _notifications(stack) if n["kind"] == "page" and n["status"] == "sent"]
        return len({n["incident_id"] for n in pages}) == INCIDENTS

    wait_until(f"the first page of all {INCIDENTS} incidents", all_paged, timeout=90, interval=0.5)
    deadlines = [datetime.fromisoformat(stack.incident(n)["deadlines"]["acknowledge"]) for n in (numbers[0], numbers[-1])]
    assert min(deadlines) > datetime.now(UTC), "deadlines passed before the outage; the test proves nothing"

    stack.kill("temporal", signal.SIGTERM)
    assert stack.http.get("/healthz").status_code == 503

    # An alert while Temporal is down: 503 with Retry-After, and nothing half-declared.
    listed_before = {i["id"] for i in stack.http.get("/api/incidents", params={"limit": 500}).json()}
    refused = stack.http.post(stack.alert_path, content=case("alertmanager-v4-firing.json"), headers=AM_HEADERS)
    assert refused.status_code == 503, refused.text
    assert refused.headers.get("retry-after", "").isdigit()
    assert {i["id"] for i in stack.http.get("/api/incidents", params={"limit": 500}).json()} == listed_before

    # Every deadline passes while the server is down.
    time.sleep(max(0.0, (max(deadlines) - datetime.now(UTC)).total_seconds()) + 1)
    assert not [n for n in _notifications(stack) if n["kind"] == "escalation"]

    stack.start_temporal()
    wait_until("/healthz to recover", lambda: stack.http.get("/healthz").status_code == 200, timeout=60)

    # The redelivered alert declares exactly one incident; a second redelivery joins it.
    # Right after the restart the worker is busy with every overdue timer, so a delivery
    # may still be answered 503 ("may still take effect"): redeliver as Alertmanager does.
    def deliver() -> httpx.Response:
        for _ in range(10):
            resp = stack.http.post(stack.alert_path, content=case("alertmanager-v4-firing.json"), headers=AM_HEADERS)
            if resp.status_code != 503:
                return resp
            time.sleep(int(resp.headers["retry-after"]))
        return resp

    first, again = deliver(), deliver()
    assert first.status_code == 200 and again.status_code == 200, (first.text, again.text)
    assert again.json()["action"] == "joined" and again.json()["incident_id"] == first.json()["incident_id"]
    from_alert = first.json()["incident_id"]

    def listed() -> set[int]:
        return {i["id"] for i in stack.http.get("/api/incidents", params={"limit": 500}).json()}

    wait_until("the alert's incident in the read model", lambda: from_alert in listed(), timeout=30)
    assert listed() == listed_before | {from_alert}, "the alert declared exactly one incident"

    def escalated() -> Counter[int] | None:
        done = Counter(n["incident_id"] for n in _notifications(stack)
                       if n["kind"] == "escalation" and n["person"] == "bob" and n["status"] == "sent")
        return done if set(done) >= set(numbers) else None

    wait_until(f"the overdue escalation of all {INCIDENTS} incidents", escalated, timeout=120, interval=0.5)
    time.sleep(2)  # a timer firing twice would show up by now
    done = escalated()
    assert done is not None and set(done.values()) == {1}, {n: c for n, c in done.items() if c != 1}
    listed = {i["id"] for i in stack.http.get("/api/incidents", params={"limit": 500}).json()}
    assert listed == listed_before | {from_alert}
    sample = stack.incident(numbers[len(numbers) // 2])
    assert (sample["status"], [p["person"] for p in sample["pages"]]) == ("triggered", ["alice", "bob"])


def _wait_step_attempts(stack: Stack, number: int) -> list[tuple[int, str]]:
    """(attempt, worker identity) of each finished health-wait activity of run #1."""

    async def read() -> list[tuple[int, str]]:
        client = await Client.connect(f"127.0.0.1:{stack.temporal_port}")
        handle = client.get_workflow_handle(runbook_run_workflow_id(number, 1))
        waits, out = set(), []
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                if event.activity_task_scheduled_event_attributes.activity_type.name == RUNBOOK_WAIT_ACTIVITY:
                    waits.add(event.event_id)
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started = event.activity_task_started_event_attributes
                if started.scheduled_event_id in waits:
                    out.append((started.attempt, started.identity))
        return out

    with ThreadPoolExecutor(max_workers=1) as pool:  # asyncio.run in a thread: the test's loop stays
        return pool.submit(asyncio.run, read()).result()


def test_worker_killed_during_a_runbook_run_resumes_it_without_repeating_the_restart(
    make_process_stack: Callable[..., Stack],
) -> None:
    """Service restart: step 1 restarts the application (not idempotent: each call is a
    restart), step 2 waits for health. The worker is SIGKILLed while step 2 polls; a new
    worker carries on polling, and the restart is never sent again."""
    token = "fault-platform-token"
    with running_platform(token=token) as platform:
        platform.break_("crash")  # what the restart clears
        platform.break_("database")  # keeps the health wait polling until the test repairs it
        stack = make_process_stack(policy_data(ack_timeout="1h"))
        stack.env["WARROOM_RUNBOOK_ENDPOINTS"] = json.dumps({"platform": platform.url})
        stack.env["WARROOM_RUNBOOK_SECRETS"] = json.dumps({"platform_token": token})
        stack.start()
        resp = stack.http.post("/api/incidents", json={"title": "Control panel hangs", "severity": "SEV-2"})
        assert resp.status_code == 201, resp.text
        number = resp.json()["id"]
        runs = f"/api/incidents/{number}/runbook-runs"
        resp = stack.http.post(runs, json={"runbook": "service-restart", "confirm_destructive": True,
                                           "reason": "threads stuck since 09:10"})
        assert resp.status_code == 201, resp.text

        def step(index: int) -> dict[str, Any]:
            resp = stack.http.get(f"{runs}/1")
            return dict(resp.json()["steps"][index - 1]) if resp.status_code == 200 else {}

        wait_until("the restart", lambda: len(platform.calls("/service/restart")) == 1, timeout=30)
        wait_until("the health wait to poll", lambda: platform.health_checks >= 2, timeout=30)
        wait_until("step 1 recorded as done", lambda: step(1).get("status") == "succeeded", timeout=30)
        assert step(1)["attempts"] == 1 and step(2)["status"] == "running", (step(1), step(2))
        old_worker = stack.procs["worker"].pid
        stack.kill("worker", signal.SIGKILL)

        checks = platform.health_checks
        time.sleep(2.5)  # longer than the wait step's 2 s interval: a live poller would show up
        assert platform.health_checks == checks, "something still polls with the worker dead"
        stack.start_worker()
        new_worker = stack.procs["worker"].pid
        wait_until("the new worker to poll the health check", lambda: platform.health_checks > checks, timeout=60)
        assert platform.state.problems(), "still broken: the wait goes on"
        with platform.platform.lock:
            platform.state.db_nodes[platform.state.primary] = True  # the database comes back

        wait_until("the manual step to wait", lambda: step(3).get("status") == "waiting", timeout=30)
        resp = stack.as_("bob").post(f"{runs}/1/steps/3/confirm", json={"note": "no heap profile this time"})
        assert resp.status_code == 200, resp.text
        run = wait_until("the run to finish", lambda: (r := stack.http.get(f"{runs}/1").json())["status"]
                         not in ("running", "waiting") and r, timeout=30)
        assert run["status"] == "succeeded", run
        assert [s["attempts"] for s in run["steps"][:2]] == [1, 1]

        restarts = platform.calls("/service/restart")
        assert len(restarts) == 1 and platform.state.restarts == 1, "the completed restart was sent again"
        assert restarts[0]["key"] == f"incident-{number}/run-1/step-1"
        attempts = _wait_step_attempts(stack, number)
        assert len(attempts) == 1, attempts
        attempt, identity = attempts[0]
        assert attempt >= 2 and identity.startswith(f"{new_worker}@"), (attempts, old_worker, new_worker)
        timeline = " ".join(e["text"] for e in stack.incident(number)["timeline"])
        assert "step 1/3 'Restart the application' succeeded" in timeline
