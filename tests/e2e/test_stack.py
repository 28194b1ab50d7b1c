"""End to end: the Temporal dev server, the worker and the API as real processes.

Configured only through WARROOM_* variables, as ``make run`` does. The
scenarios are the ones a newcomer tries by hand, plus the crashes the design
promises to survive: a killed worker and a restarted dev server.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.stack import Stack, case, policy_data, wait_until

pytestmark = pytest.mark.slow

AM_HEADERS = {"content-type": "application/json"}

LEVEL_ONE_WAIT = 4  # seconds: level 1's ack_timeout in the crash scenarios


def crash_policy() -> dict[str, Any]:
    """Level 1 times out in seconds; level 2 waits long enough that nothing follows it."""
    return policy_data(
        escalation={
            "levels": [
                {"notify": ["alice"], "ack_timeout": f"{LEVEL_ONE_WAIT}s"},
                {"notify": ["bob"], "ack_timeout": "10m"},
            ],
            "repeat": 1,
            "fallback": ["erin"],
        }
    )


def paging(stack: Stack, incident_id: int) -> list[tuple[str, str]]:
    """(kind, person) of every page and escalation sent for the incident, oldest first."""
    return [
        (n["kind"], n["person"])
        for n in stack.notifications(incident_id)
        if n["kind"] in ("page", "escalation", "fallback")
    ]


def sent(stack: Stack, incident_id: int, kind: str, person: str) -> bool:
    return any(
        n["kind"] == kind and n["person"] == person and n["status"] == "sent" for n in stack.notifications(incident_id)
    )


def seconds_until(stack: Stack, incident_id: int, deadline: str) -> float:
    at = datetime.fromisoformat(stack.incident(incident_id)["deadlines"][deadline])
    return (at - datetime.now(at.tzinfo)).total_seconds()


def settle(stack: Stack, check: Callable[[], bool], seconds: float = 1.5) -> None:
    """Give a wrong extra page time to show up, failing as soon as it does."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert check(), "a page was sent more than once"
        time.sleep(0.1)


def test_alertmanager_twice_one_incident_one_page_ack_resolve(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack().start()
    http = stack.http

    first = http.post(stack.alert_path, content=case("alertmanager-v4-firing.json"), headers=AM_HEADERS)
    second = http.post(stack.alert_path, content=case("alertmanager-v4-firing.json"), headers=AM_HEADERS)
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert first.json()["action"] == "declared"
    assert second.json() == {"incident_id": first.json()["incident_id"], "action": "joined", "new_alerts": 0, "held_alerts": 0}
    number = first.json()["incident_id"]

    wait_until("alice's page", lambda: sent(stack, number, "page", "alice"), timeout=30)
    wait_until("the incident in the list", lambda: http.get("/api/incidents").json(), timeout=30)
    listed = http.get("/api/incidents").json()
    assert [(i["id"], i["severity"], i["status"]) for i in listed] == [(number, "SEV-2", "triggered")]
    assert paging(stack, number) == [("page", "alice")]

    ack = http.post(f"/api/incidents/{number}/acknowledge", json={"person": "alice"})
    assert ack.status_code == 200, ack.text
    assert ack.json()["status"] == "acknowledged"
    resolved = http.post(
        f"/api/incidents/{number}/resolve",
        json={"summary": "The DNS publisher was rolled back", "impact": "DNS changes were late by up to 14 minutes"},
    )
    assert resolved.status_code == 200, resolved.text

    notice = "The DNS publisher was rolled back. Impact: DNS changes were late by up to 14 minutes."
    live = stack.incident(number)
    assert live["status"] == "resolved"
    resolutions = [u for u in live["status_updates"] if u["kind"] == "resolution"]
    assert len(resolutions) == 1
    assert notice in resolutions[0]["message"]

    def status_page_shows_notice() -> bool:
        html = http.get("/status").text
        return notice in html and "All systems operational" in html

    wait_until("the resolution notice on /status", status_page_shows_notice, timeout=30)
    assert "All systems operational" in http.get("/status").text
    wait_until("the resolution message to alice", lambda: sent(stack, number, "resolution", "alice"), timeout=30)
    assert paging(stack, number) == [("page", "alice")]
    assert [i["id"] for i in http.get("/api/incidents").json()] == [number]


def test_killed_worker_escalates_once_after_restart(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(crash_policy()).start()
    resp = stack.http.post("/api/incidents", json={"title": "Control panel returns 502", "severity": "SEV-1"})
    assert resp.status_code == 201, resp.text
    number = resp.json()["id"]
    wait_until("alice's page", lambda: sent(stack, number, "page", "alice"), timeout=30)

    deadline = time.monotonic() + seconds_until(stack, number, "acknowledge")  # asked while a worker answers
    stack.kill("worker", signal.SIGKILL)
    remaining = deadline - time.monotonic()
    assert remaining > 0, "the worker died after the escalation deadline; the test proves nothing"
    time.sleep(remaining + 1)
    assert paging(stack, number) == [("page", "alice")], "someone escalated while no worker was running"

    stack.start_worker()
    wait_until("bob's escalation", lambda: sent(stack, number, "escalation", "bob"), timeout=60)
    settle(stack, lambda: paging(stack, number) == [("page", "alice"), ("escalation", "bob")])
    live = stack.incident(number)
    assert [p["person"] for p in live["pages"]] == ["alice", "bob"]
    assert sum(e["text"].startswith("Paged level 2") for e in live["timeline"]) == 1


def test_dev_server_restart_keeps_the_incident_and_its_deadline(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(crash_policy()).start()
    resp = stack.http.post(
        "/api/incidents", json={"title": "Webmail logins fail", "severity": "SEV-2", "components": ["webmail"]}
    )
    assert resp.status_code == 201, resp.text
    number = resp.json()["id"]
    wait_until("alice's page", lambda: sent(stack, number, "page", "alice"), timeout=30)
    remaining = seconds_until(stack, number, "acknowledge")

    stack.kill("temporal", signal.SIGKILL)
    assert stack.http.get("/healthz").status_code == 503
    time.sleep(max(0.0, remaining) + 1)
    assert paging(stack, number) == [("page", "alice")]

    stack.start_temporal()
    wait_until("/healthz to recover", lambda: stack.http.get("/healthz").status_code == 200, timeout=60)
    wait_until("bob's escalation", lambda: sent(stack, number, "escalation", "bob"), timeout=90)
    settle(stack, lambda: paging(stack, number) == [("page", "alice"), ("escalation", "bob")])
    live = stack.incident(number)
    assert (live["title"], live["status"], live["components"]) == ("Webmail logins fail", "triggered", ["webmail"])
    assert [p["person"] for p in live["pages"]] == ["alice", "bob"]

    ack = stack.as_("bob").post(f"/api/incidents/{number}/acknowledge", json={})
    assert ack.status_code == 200, ack.text
