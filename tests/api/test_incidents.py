"""The incident REST API over a real workflow: declaring, reading, commands and refusals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.support import Api, eventually

ACK_TIMEOUT = timedelta(seconds=60)  # tests.stack.policy_data defaults
FIRST_STATUS_WITHIN = timedelta(seconds=120)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def pages_of(api: Api, incident_id: int) -> list[dict[str, Any]]:
    """The incident's pages once every one has an outcome (none still being sent)."""
    pages = [n for n in await api.notifications(incident_id) if n["kind"] == "page"]
    return [] if any(p["status"] in ("sending", "retrying") for p in pages) else pages


async def sent_pages(api: Api, incident_id: int) -> list[dict[str, Any]]:
    """The incident's pages once every one has gone out. (With the per-contact cap on, as in
    these tests' policy, a page is claimed "queued" for an instant before it is sent, and
    stays so while the cap holds it: ``pages_of`` counts that as an outcome.)"""
    pages = [n for n in await api.notifications(incident_id) if n["kind"] == "page"]
    return pages if pages and all(p["status"] == "sent" for p in pages) else []


# --- declaring -------------------------------------------------------------------------


async def test_declare_answers_201_with_id_status_and_deadlines(api: Api) -> None:
    before = datetime.now(UTC)
    resp = await api.http.post(
        "/api/incidents",
        json={
            "title": "Control panel returns 502",
            "severity": "SEV-2",
            "summary": "Logins fail for every customer",
            "components": ["control-panel"],
            "impact_started_at": "2026-11-30T02:41:07Z",
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["id"] == api.first_number
    assert body["status"] == "triggered"
    assert body["severity"] == "SEV-2"
    assert body["components"] == ["control-panel"]
    assert at(body["impact_started_at"]) == datetime(2026, 11, 30, 2, 41, 7, tzinfo=UTC)
    declared = at(body["declared_at"])
    assert before - timedelta(seconds=1) <= declared <= datetime.now(UTC)
    deadlines = {name: at(when) for name, when in body["deadlines"].items()}
    assert deadlines["acknowledge"] == declared + ACK_TIMEOUT
    assert deadlines["first_status_update"] == declared + FIRST_STATUS_WITHIN


async def test_declared_incident_pages_level_one_once(api: Api) -> None:
    inc = await api.declare(title="Mail delivery stalled", severity="SEV-1")
    pages = await eventually("the first page", lambda: sent_pages(api, inc["id"]))
    assert [(p["person"], p["channel"], p["status"]) for p in pages] == [("alice", "sms", "sent")]
    assert "Mail delivery stalled" in pages[0]["text"]
    assert pages[0]["incident_id"] == inc["id"]


async def test_same_idempotency_key_twice_gives_the_same_incident(api: Api) -> None:
    headers = {"Idempotency-Key": "deploy-4711-rollback"}
    body = {"title": "Billing exports fail", "severity": "SEV-2"}
    first = await api.http.post("/api/incidents", json=body, headers=headers)
    second = await api.http.post("/api/incidents", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert second.json()["id"] == first.json()["id"]

    other = await api.http.post("/api/incidents", json=body, headers={"Idempotency-Key": "something-else"})
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]

    await eventually("both pages", lambda: _both_paged(api, first.json()["id"], other.json()["id"]))

    async def listed() -> list[int]:
        return sorted(i["id"] for i in (await api.http.get("/api/incidents")).json())

    await eventually("both incidents in the read model", lambda: _at_least(listed, 2))
    assert await listed() == sorted([first.json()["id"], other.json()["id"]])
    assert len(await pages_of(api, first.json()["id"])) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"severity": "SEV-2"}, "title"),
        ({"title": "", "severity": "SEV-2"}, "title"),
        ({"title": "DNS slow", "severity": "SEV-9"}, "unknown severity 'SEV-9'"),
        ({"title": "DNS slow"}, "severity"),
        ({"title": "DNS slow", "severity": "SEV-2", "impact_started_at": "2026-11-30T02:41:07"}, "time zone"),
        ({"title": "DNS slow", "severity": "SEV-2", "impact_started_at": "yesterday"}, "impact_started_at"),
        # Instants the read model cannot store in UTC used to crash-loop the persist activity.
        ({"title": "DNS slow", "severity": "SEV-2", "impact_started_at": "0001-01-01T00:00:00+05:00"}, "UTC"),
        ({"title": "DNS slow", "severity": "SEV-2", "impact_started_at": "9999-12-31T23:00:00-05:00"}, "UTC"),
        ({"title": "DNS slow", "severity": "SEV-2", "impact_started_at": "1969-12-31T23:59:59Z"}, "1970"),
        ({"title": "DNS slow", "severity": "SEV-2", "priority": "P1"}, "priority"),
        ({"title": "DNS slow", "severity": "SEV-2", "components": [""]}, "component"),
    ],
)
async def test_malformed_declaration_is_422_with_a_reason(api: Api, body: dict[str, Any], reason: str) -> None:
    resp = await api.http.post("/api/incidents", json=body)
    assert resp.status_code == 422, resp.text
    assert reason in resp.json()["detail"]
    assert (await api.http.get("/api/incidents")).json() == []


async def test_body_that_is_not_json_is_422(api: Api) -> None:
    resp = await api.http.post(
        "/api/incidents", content=b"{title: DNS", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["detail"]


# --- unknown incidents -----------------------------------------------------------------

COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("acknowledge", {"person": "alice"}),
    ("escalate", {"person": "alice"}),
    ("status-updates", {"message": "We are investigating."}),
    ("roles", {"role": "incident_commander", "person": "alice"}),
    ("severity", {"severity": "SEV-1"}),
    ("resolve", {"summary": "Rolled back."}),
    ("postmortem", {"summary": "x"}),
]


async def test_unknown_incident_is_404_for_get(api: Api) -> None:
    resp = await api.http.get(f"/api/incidents/{api.first_number + 999}")
    assert resp.status_code == 404
    assert "not found" in resp.json()["detail"]


@pytest.mark.parametrize(("command", "body"), COMMANDS, ids=[c for c, _ in COMMANDS])
async def test_unknown_incident_is_404_for_every_command(api: Api, command: str, body: dict[str, Any]) -> None:
    resp = await api.http.post(f"/api/incidents/{api.first_number + 999}/{command}", json=body)
    assert resp.status_code == 404, resp.text
    assert "not found" in resp.json()["detail"]


@pytest.mark.parametrize("bad_id", ["latest", "0", "-1", "99999999999999999999999"])
async def test_incident_id_that_is_not_an_incident_number_is_422(api: Api, bad_id: str) -> None:
    """Not 500: an id past SQLite's 64-bit INTEGER used to raise OverflowError in the read model."""
    assert (await api.http.get(f"/api/incidents/{bad_id}")).status_code == 422
    ack = await api.http.post(f"/api/incidents/{bad_id}/acknowledge", json={"person": "alice"})
    assert ack.status_code == 422
    assert "incident_id" in ack.json()["detail"]
    notes = await api.http.get("/api/notifications", params={"incident_id": bad_id})
    assert notes.status_code == 422


# --- commands the lifecycle refuses ----------------------------------------------------


async def test_second_acknowledgement_is_409_naming_who_acked(api: Api) -> None:
    inc = await api.declare()
    first = await api.http.post(f"/api/incidents/{inc['id']}/acknowledge", json={"person": "alice"})
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "acknowledged"
    second = await (await api.as_("bob")).post(f"/api/incidents/{inc['id']}/acknowledge", json={})
    assert second.status_code == 409
    assert "already acknowledged by alice" in second.json()["detail"]
    live = await api.incident(inc["id"])
    assert live["acknowledged_by"] == "alice"
    assert "acknowledge" not in live["deadlines"]


async def test_ack_by_someone_outside_the_policy_is_409(api: Api) -> None:
    """mallory is a responder of warroom, but not a person of the incident's policy."""
    inc = await api.declare()
    resp = await (await api.as_("mallory")).post(f"/api/incidents/{inc['id']}/acknowledge", json={})
    assert resp.status_code == 409
    assert "mallory" in resp.json()["detail"]
    assert (await api.incident(inc["id"]))["status"] == "triggered"


async def test_ack_after_resolve_is_409(api: Api) -> None:
    inc = await api.declare()
    resolved = await api.http.post(f"/api/incidents/{inc['id']}/resolve", json={"summary": "Restarted the proxy."})
    assert resolved.status_code == 200, resolved.text
    resp = await api.http.post(f"/api/incidents/{inc['id']}/acknowledge", json={"person": "alice"})
    assert resp.status_code == 409
    assert "resolved" in resp.json()["detail"]


async def test_resolving_twice_is_409(api: Api) -> None:
    inc = await api.declare()
    assert (await api.http.post(f"/api/incidents/{inc['id']}/resolve", json={"summary": "Fixed."})).status_code == 200
    again = await api.http.post(f"/api/incidents/{inc['id']}/resolve", json={"summary": "Fixed again."})
    assert again.status_code == 409
    assert "already resolved" in again.json()["detail"]


async def test_postmortem_before_resolution_is_409(api: Api) -> None:
    inc = await api.declare(severity="SEV-1")
    resp = await api.http.post(f"/api/incidents/{inc['id']}/postmortem", json=complete_postmortem())
    assert resp.status_code == 409
    assert "not resolved yet" in resp.json()["detail"]


async def test_incomplete_postmortem_is_409_naming_each_missing_part(api: Api) -> None:
    inc = await api.declare(severity="SEV-2")
    assert (await api.http.post(f"/api/incidents/{inc['id']}/resolve", json={"summary": "Fixed."})).status_code == 200
    resp = await api.http.post(
        f"/api/incidents/{inc['id']}/postmortem",
        json={"summary": "The DNS publisher stalled.", "impact": "DNS changes were late by 14 minutes."},
    )
    assert resp.status_code == 409
    detail = resp.json()["detail"]
    for missing in ("timeline", "root cause", "what went well", "what could improve", "action items"):
        assert missing in detail, detail
    for present in ("summary is empty", "impact is empty"):
        assert present not in detail

    accepted = await api.http.post(f"/api/incidents/{inc['id']}/postmortem", json=complete_postmortem())
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "closed"


async def test_action_item_without_owner_or_zone_is_422(api: Api) -> None:
    inc = await api.declare()
    doc = complete_postmortem()
    doc["action_items"] = [{"title": "Alert on publish lag", "due": "2099-01-01T00:00:00"}]
    resp = await api.http.post(f"/api/incidents/{inc['id']}/postmortem", json=doc)
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert "owner" in detail and "time zone" in detail


# --- every refusal of the incident commands: status and reason, one table ----------------------

REFUSED_WHEN_RESOLVED: list[tuple[str, dict[str, Any]]] = [
    ("acknowledge", {"person": "alice"}),
    ("escalate", {"person": "alice"}),
    ("status-updates", {"message": "Still watching."}),
    ("severity", {"severity": "SEV-1"}),
    ("resolve", {"summary": "Rolled back again."}),
    ("components", {"component": "dns", "state": "major_outage"}),
]


async def test_every_command_on_a_resolved_or_closed_incident_is_409_with_the_reason(api: Api) -> None:
    """A resolved SEV-2 still runs (its postmortem is due); a resolved SEV-3 is closed and its
    workflow has finished, so the API answers from the read model."""
    resolved = (await api.declare(severity="SEV-2"))["id"]
    closed = (await api.declare(severity="SEV-3"))["id"]
    for n in (resolved, closed):
        done = await api.http.post(f"/api/incidents/{n}/resolve", json={"summary": "Rolled back."})
        assert done.status_code == 200, done.text
    assert (await api.incident(closed))["status"] == "closed"

    for command, body in REFUSED_WHEN_RESOLVED:
        resp = await api.http.post(f"/api/incidents/{resolved}/{command}", json=body)
        assert resp.status_code == 409, (command, resp.text)
        assert "already resolved" in resp.json()["detail"], (command, resp.text)
    # A resolved incident still takes what its postmortem needs: an IC to remind, and the document.
    ic = await api.http.post(f"/api/incidents/{resolved}/roles", json={"role": "ic", "person": "bob"})
    assert ic.status_code == 200, ic.text

    for command, body in [*REFUSED_WHEN_RESOLVED, ("roles", {"role": "ic", "person": "bob"}),
                          ("postmortem", complete_postmortem())]:
        resp = await api.http.post(f"/api/incidents/{closed}/{command}", json=body)
        assert resp.status_code == 409, (command, resp.text)
        assert resp.json()["detail"] == f"incident #{closed} is closed; it takes no more commands", command
    live = await api.incident(resolved)
    assert (live["status"], live["severity"], live["acknowledged_by"]) == ("resolved", "SEV-2", None)
    assert [u["kind"] for u in live["status_updates"]] == ["resolution"]


MALFORMED_COMMANDS: list[tuple[str, str, dict[str, Any], str]] = [
    ("unknown severity", "severity", {"severity": "SEV-9"}, "unknown severity 'SEV-9'"),
    ("severity by name", "severity", {"severity": "critical"}, "unknown severity 'critical'"),
    ("severity empty", "severity", {"severity": ""}, "unknown severity"),
    ("severity a number", "severity", {"severity": 1}, "severity"),
    ("severity missing", "severity", {"reason": "worse"}, "severity: Field required"),
    ("update empty", "status-updates", {"message": ""}, "message: String should have at least 1 character"),
    ("update blank", "status-updates", {"message": "  \n "}, "message: String should have at least 1 character"),
    ("update too long", "status-updates", {"message": "x" * 5001}, "message: String should have at most 5000"),
    ("update missing", "status-updates", {"author": "alice"}, "message: Field required"),
    ("update phase unknown", "status-updates", {"message": "Found it.", "phase": "fixed"},
     "phase: unknown phase 'fixed': use investigating, identified, monitoring"),
    ("update phase resolved", "status-updates", {"message": "Done.", "phase": "resolved"},
     "phase: an update does not resolve the incident: use POST /api/incidents/{id}/resolve"),
    ("update phase not text", "status-updates", {"message": "Found it.", "phase": 2}, "phase: Input should be"),
    ("role unknown", "roles", {"role": "janitor", "person": "alice"}, "role"),
    ("role for nobody", "roles", {"role": "ic", "person": ""}, "person"),
    ("role for an unknown person", "roles", {"role": "ic", "person": "zoe"}, "'zoe' is not a known person"),
]


@pytest.mark.parametrize(("command", "body", "reason"), [c[1:] for c in MALFORMED_COMMANDS],
                         ids=[c[0] for c in MALFORMED_COMMANDS])
async def test_a_malformed_command_is_422_with_the_reason_and_changes_nothing(
    api: Api, command: str, body: dict[str, Any], reason: str
) -> None:
    inc = await api.declare(severity="SEV-2")
    resp = await api.http.post(f"/api/incidents/{inc['id']}/{command}", json=body)
    assert resp.status_code == 422, resp.text
    assert reason in resp.json()["detail"], resp.text
    live = await api.incident(inc["id"])
    assert (live["severity"], live["roles"], live["status_updates"]) == ("SEV-2", {}, [])


def complete_postmortem() -> dict[str, Any]:
    return {
        "summary": "The DNS publisher stalled after a config push.",
        "timeline": "02:41 alert; 02:45 ack; 03:10 rollback; 03:28 backlog drained.",
        "root_cause": "A config push halved the publisher's worker pool.",
        "impact": "DNS changes were delayed by up to 14 minutes.",
        "what_went_well": "The alert fired within two minutes.",
        "what_could_improve": "Config pushes were not canaried.",
        "action_items": [
            {"title": "Canary publisher config pushes", "owner": "bob", "due": "2099-01-15T17:00:00Z"},
        ],
        "by": "alice",
    }


# --- the whole command set ----------------------------------------------------------------


async def test_commands_change_the_live_state(api: Api) -> None:
    inc = await api.declare(severity="SEV-3")
    n = inc["id"]
    ok = [
        await api.http.post(f"/api/incidents/{n}/roles", json={"role": "ic", "person": "alice"}),
        await api.http.post(f"/api/incidents/{n}/severity", json={"severity": "sev1", "reason": "all regions"}),
        await api.http.post(f"/api/incidents/{n}/status-updates",
                            json={"message": "Rolling back.", "author": "alice", "phase": "Identified"}),
        await (await api.as_("bob")).post(f"/api/incidents/{n}/acknowledge", json={}),
    ]
    assert [r.status_code for r in ok] == [200] * 4, [r.text for r in ok]
    live = await api.incident(n)
    assert live["roles"] == {"incident_commander": "alice"}
    assert live["severity"] == "SEV-1"
    assert live["status"] == "acknowledged"
    assert [(u["message"], u["phase"]) for u in live["status_updates"]] == [("Rolling back.", "identified")]
    assert live["public_phase"] == "identified"
    assert "next_status_update" in live["deadlines"] and "first_status_update" not in live["deadlines"]
    kinds = [e["kind"] for e in live["timeline"]]
    for kind in ("declared", "page", "role", "severity", "status", "ack"):
        assert kind in kinds

    same = await api.http.post(f"/api/incidents/{n}/severity", json={"severity": "SEV-1"})
    assert same.status_code == 409
    assert "already SEV-1" in same.json()["detail"]
    bad_role = await api.http.post(f"/api/incidents/{n}/roles", json={"role": "janitor", "person": "alice"})
    assert bad_role.status_code == 422


# --- lists -------------------------------------------------------------------------------


async def test_incident_list_filters_by_status_and_severity(api: Api) -> None:
    sev1 = await api.declare(title="All logins fail", severity="SEV-1")
    sev3 = await api.declare(title="Slow invoice PDFs", severity="SEV-3")
    sev2 = await api.declare(title="Webmail slow", severity="SEV-2")
    await api.http.post(f"/api/incidents/{sev2['id']}/resolve", json={"summary": "Cache warmed."})
    await api.http.post(f"/api/incidents/{sev3['id']}/acknowledge", json={"person": "alice"})

    async def listed(query: str) -> list[int]:
        resp = await api.http.get(f"/api/incidents{query}")
        assert resp.status_code == 200, resp.text
        return sorted(i["id"] for i in resp.json())

    async def read_model_caught_up() -> bool:
        return await listed("?status=resolved") == [sev2["id"]] and await listed("?status=acknowledged") == [
            sev3["id"]
        ]

    await eventually("the read model to record the resolution and the ack", read_model_caught_up)
    assert await listed("?severity=SEV-1") == [sev1["id"]]
    assert await listed("?status=triggered") == [sev1["id"]]
    assert await listed("?status=open") == sorted([sev1["id"], sev3["id"]])
    assert await listed("?status=resolved&severity=SEV-1") == []
    assert await listed("") == sorted([sev1["id"], sev2["id"], sev3["id"]])
    for bad in ("?status=burning", "?severity=SEV-7", "?limit=0"):
        assert (await api.http.get(f"/api/incidents{bad}")).status_code == 422


async def test_notifications_filtered_by_incident(api: Api) -> None:
    one = await api.declare(title="Mail queue backlog", severity="SEV-2")
    two = await api.declare(title="DNS publish lag", severity="SEV-2")
    await eventually("both pages", lambda: _both_paged(api, one["id"], two["id"]))
    only_one = await api.notifications(one["id"])
    assert {n["incident_id"] for n in only_one} == {one["id"]}
    assert all("Mail queue backlog" in n["text"] for n in only_one if n["kind"] == "page")
    everything = (await api.http.get("/api/notifications")).json()
    assert {n["incident_id"] for n in everything} == {one["id"], two["id"]}
    assert (await api.http.get("/api/notifications", params={"incident_id": "x"})).status_code == 422


async def _both_paged(api: Api, a: int, b: int) -> bool:
    return bool(await pages_of(api, a)) and bool(await pages_of(api, b))


async def _at_least(probe: Any, n: int) -> bool:
    return len(await probe()) >= n


async def test_an_idempotency_key_is_the_callers_own_and_stands_for_one_request(api: Api) -> None:
    headers = {"Idempotency-Key": "pager-42"}
    first = await api.http.post("/api/incidents", json={"title": "Webmail down", "severity": "SEV-2"},
                                headers=headers)
    assert first.status_code == 201, first.text
    number = first.json()["id"]
    # The same key with another request: refused, naming what the key declared; nothing new.
    changed = await api.http.post("/api/incidents", json={"title": "Billing down", "severity": "SEV-1"},
                                  headers=headers)
    assert changed.status_code == 422, changed.text
    assert f"declared incident #{number} with a different request" in changed.json()["detail"]
    # Another person's identical key is their own request: a second incident, declared by them.
    bob = await api.as_("bob")
    theirs = await bob.post("/api/incidents", json={"title": "Webmail down", "severity": "SEV-2"}, headers=headers)
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != number and theirs.json()["declared_by"] == "bob"
    again = await bob.post("/api/incidents", json={"title": "Webmail down", "severity": "SEV-2"}, headers=headers)
    assert again.json()["id"] == theirs.json()["id"]


async def test_concurrent_requests_with_one_idempotency_key_make_one_incident(api: Api) -> None:
    headers = {"Idempotency-Key": "retrying-client-7"}
    body = {"title": "Object storage 5xx", "severity": "SEV-2"}
    answers = await asyncio.gather(*(api.http.post("/api/incidents", json=body, headers=headers) for _ in range(4)))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert {a.json()["id"] for a in answers} == {api.first_number}
    await eventually("the page", lambda: pages_of(api, api.first_number))
    assert len(await pages_of(api, api.first_number)) == 1


# --- what a declaration may name -----------------------------------------------------------------


async def test_declaring_with_an_unknown_component_is_422_naming_the_known_ones(api: Api) -> None:
    resp = await api.http.post("/api/incidents", json={"title": "x", "severity": "SEV-3", "components": ["dns", "nope"]})
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert "'nope'" in detail and "'dns'" not in detail
    assert "known: control-panel, api, billing, dns, email" in detail
    listed = await api.http.get("/api/incidents")
    assert listed.json() == []  # nothing declared, no number used up
    # Names, aliases and any case are the same component as on the status page.
    inc = await api.declare(components=["DNS", "mail"])
    assert inc["components"] == ["DNS", "mail"]


async def test_an_impact_start_in_the_future_is_422_but_clock_skew_is_tolerated(api: Api) -> None:
    far = await api.http.post("/api/incidents", json={"title": "x", "severity": "SEV-3",
                                                      "impact_started_at": "9999-12-31T00:00:00Z"})
    assert far.status_code == 422, far.text
    assert "impact_started_at" in far.json()["detail"] and "future" in far.json()["detail"]
    soon = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    assert (await api.http.post("/api/incidents", json={"title": "x", "severity": "SEV-3",
                                                        "impact_started_at": soon})).status_code == 422
    skewed = datetime.now(UTC) + timedelta(minutes=1)
    inc = await api.declare(severity="SEV-3", impact_started_at=skewed.isoformat())
    assert at(inc["impact_started_at"]) == skewed


async def test_a_status_update_sent_again_with_its_idempotency_key_is_posted_once(api: Api) -> None:
    inc = await api.declare(title="Mail queue backlog", severity="SEV-2")
    url = f"/api/incidents/{inc['id']}/status-updates"
    update = {"message": "We are draining the queue.", "phase": "identified"}
    first = await api.http.post(url, json=update, headers={"Idempotency-Key": "upd-1"})
    retried = await api.http.post(url, json=update, headers={"Idempotency-Key": "upd-1"})  # a client's retry
    assert (first.status_code, retried.status_code) == (200, 200), (first.text, retried.text)
    assert retried.json() == first.json()
    other = await api.http.post(url, json={"message": "Half drained."}, headers={"Idempotency-Key": "upd-2"})
    plain = await api.http.post(url, json={"message": "Half drained."})
    assert (other.status_code, plain.status_code) == (200, 200)
    messages = [u["message"] for u in (await api.incident(inc["id"]))["status_updates"] if u["kind"] == "update"]
    assert messages == ["We are draining the queue.", "Half drained.", "Half drained."]
