"""The public JSON has the shape of Atlassian Statuspage's public v2 API, field by field,
and the HTML page, incident page and Atom feed show the same facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import re

import pytest
from sqlalchemy import Engine

from tests.api.statuspage_helpers import add_incident, api, make_app
from warroom.statuspage.export import export

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)

# The documented fields of Statuspage's public v2 objects.
PAGE = {"id", "name", "url", "time_zone", "updated_at"}
STATUS = {"indicator", "description"}
COMPONENT = {"id", "name", "status", "created_at", "updated_at", "position", "description", "showcase",
             "start_date", "group_id", "page_id", "group", "only_show_if_degraded"}
INCIDENT = {"id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact",
            "shortlink", "started_at", "page_id", "incident_updates", "components"}
INCIDENT_UPDATE = {"id", "status", "body", "incident_id", "created_at", "updated_at", "display_at",
                   "affected_components", "deliver_notifications", "custom_tweet", "tweet_id"}
MAINTENANCE = INCIDENT | {"scheduled_for", "scheduled_until"}
INDICATORS = {"none", "minor", "major", "critical", "maintenance"}
COMPONENT_STATUSES = {"operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"}
INCIDENT_STATUSES = {"investigating", "identified", "monitoring", "resolved", "postmortem"}
IMPACTS = {"none", "minor", "major", "critical"}
MAINTENANCE_STATUSES = {"scheduled", "in_progress", "verifying", "completed"}


def timestamp(value: Any, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    assert isinstance(value, str) and datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None, value


def check_page(page: dict[str, Any]) -> None:
    assert set(page) >= PAGE
    assert isinstance(page["id"], str) and isinstance(page["name"], str) and page["url"].startswith("http")
    timestamp(page["updated_at"])


def check_component(c: dict[str, Any]) -> None:
    assert set(c) >= COMPONENT, COMPONENT - set(c)
    assert c["status"] in COMPONENT_STATUSES
    assert isinstance(c["id"], str) and isinstance(c["position"], int) and isinstance(c["group"], bool)
    timestamp(c["created_at"])
    timestamp(c["updated_at"])
    if c["group"]:
        assert isinstance(c["components"], list) and c["components"]


def check_incident(i: dict[str, Any], fields: set[str] = INCIDENT, statuses: set[str] = INCIDENT_STATUSES) -> None:
    assert set(i) >= fields, fields - set(i)
    assert i["status"] in statuses and isinstance(i["id"], str)
    assert i["impact"] in IMPACTS | {"maintenance"}
    for name in ("created_at", "updated_at", "started_at"):
        timestamp(i[name])
    timestamp(i["resolved_at"], nullable=True)
    for u in i["incident_updates"]:
        assert set(u) >= INCIDENT_UPDATE, INCIDENT_UPDATE - set(u)
        assert u["incident_id"] == i["id"]
        timestamp(u["created_at"])
        timestamp(u["display_at"])
        for a in u["affected_components"]:
            assert set(a) >= {"code", "name", "old_status", "new_status"}
    for c in i["components"]:
        check_component(c)


@pytest.fixture
def populated(engine: Engine) -> Engine:
    add_incident(
        engine, 7, "DNS changes publish slowly", "SEV-2", NOW - timedelta(minutes=40), ["dns"],
        [(timedelta(minutes=4), "update", "We are investigating slow DNS publishing."),
         (timedelta(minutes=30), "update", "A stuck publisher was found; we are restarting it.", "identified")],
        impacts=[("dns", "partial_outage", timedelta(0), None)],
    )
    add_incident(
        engine, 6, "Control panel logins failed", "SEV-1", NOW - timedelta(days=2), ["control-panel"],
        [(timedelta(minutes=3), "auto_initial", "We are aware of a problem."),
         (timedelta(minutes=43), "resolution", "Resolved: logins work again.")],
        resolved_after=timedelta(minutes=43),
        impacts=[("control-panel", "major_outage", timedelta(0), timedelta(minutes=43))],
    )
    return engine


async def test_v2_documents_carry_every_documented_field(populated: Engine, tmp_path: Path) -> None:
    async with api(make_app(tmp_path, populated, clock=lambda: NOW)) as http:
        docs = {name: (await http.get(f"/api/v2/{name}")).json() for name in (
            "status.json", "summary.json", "components.json", "incidents.json", "incidents/unresolved.json",
            "scheduled-maintenances.json")}
        missing = await http.get("/api/v2/nope.json")
    assert missing.status_code == 404
    for doc in docs.values():
        check_page(doc["page"])
    status = docs["status.json"]["status"]
    assert set(status) >= STATUS and status["indicator"] == "major"
    summary = docs["summary.json"]
    assert set(summary) >= {"page", "components", "incidents", "scheduled_maintenances", "status"}
    for c in docs["components.json"]["components"]:
        check_component(c)
    by_id = {c["id"]: c for c in summary["components"]}
    assert by_id["dns"]["status"] == "partial_outage" and by_id["dns"]["group_id"] == "group-hosting-services"
    assert by_id["control-panel"]["status"] == "operational"
    assert by_id["group-hosting-services"]["components"] == ["dns", "email"]
    for i in docs["incidents.json"]["incidents"]:
        check_incident(i)
    assert [i["id"] for i in docs["incidents.json"]["incidents"]] == ["7", "6"]
    [open_] = docs["incidents/unresolved.json"]["incidents"]
    assert summary["incidents"] == [open_]
    # The incident stands where its latest update put it; each update shows its own phase.
    assert open_["status"] == "identified" and open_["impact"] == "major" and open_["resolved_at"] is None
    assert [u["status"] for u in open_["incident_updates"]] == ["identified", "investigating"]
    assert open_["monitoring_at"] is None
    assert open_["shortlink"] == "http://warroom.test/status/incidents/7"
    # Updates newest first, as Statuspage lists them.
    assert [u["body"] for u in open_["incident_updates"]] == [
        "A stuck publisher was found; we are restarting it.", "We are investigating slow DNS publishing."]
    resolved = docs["incidents.json"]["incidents"][1]
    assert resolved["status"] == "resolved" and resolved["impact"] == "critical"
    assert [u["status"] for u in resolved["incident_updates"]] == ["resolved", "investigating"]
    assert resolved["monitoring_at"] is None
    # Each update's affected components: the change since the update before it, from the
    # recorded intervals (the component was set on declaring and restored on resolving).
    def changes(incident: dict[str, Any]) -> list[list[tuple[str, str, str]]]:
        return [[(a["code"], a["old_status"], a["new_status"]) for a in u["affected_components"]]
                for u in reversed(incident["incident_updates"])]
    assert changes(open_) == [[("dns", "operational", "partial_outage")], [("dns", "partial_outage", "partial_outage")]]
    assert changes(resolved) == [[("control-panel", "operational", "major_outage")],
                                 [("control-panel", "major_outage", "operational")]]


async def test_phases_monitoring_at_and_a_move_back(engine: Engine, tmp_path: Path) -> None:
    """An update without a phase shows the one in force; moving back from monitoring is shown
    as it is; monitoring_at is when the incident last went into monitoring, and stays once resolved."""
    t0 = NOW - timedelta(hours=1)
    add_incident(
        engine, 8, "Email is delayed", "SEV-2", t0, ["email"],
        [(timedelta(minutes=2), "auto_initial", "We are aware of a problem."),  # written before phases: NULL
         (timedelta(minutes=10), "update", "A full disk on the relay.", "identified"),
         (timedelta(minutes=20), "update", "Disk cleared; mail flows.", "monitoring"),
         (timedelta(minutes=25), "update", "Still flowing.", None),
         (timedelta(minutes=30), "update", "Delays are back.", "investigating"),
         (timedelta(minutes=40), "update", "Second relay fixed too.", "monitoring")],
    )
    add_incident(
        engine, 9, "API errors", "SEV-3", t0, ["api"],
        [(timedelta(minutes=5), "update", "A bad deploy.", "identified"),
         (timedelta(minutes=9), "update", "Rolled back.", "monitoring"),
         (timedelta(minutes=15), "resolution", "Resolved: errors stopped.")],
        resolved_after=timedelta(minutes=15),
    )
    async with api(make_app(tmp_path, engine, clock=lambda: NOW)) as http:
        incidents = {i["id"]: i for i in (await http.get("/api/v2/incidents.json")).json()["incidents"]}
        page = (await http.get("/status/incidents/8")).text
    open_, resolved = incidents["8"], incidents["9"]
    check_incident(open_)
    assert open_["status"] == "monitoring"
    assert [u["status"] for u in reversed(open_["incident_updates"])] == [
        "investigating", "identified", "monitoring", "monitoring", "investigating", "monitoring"]
    assert open_["monitoring_at"] == "2026-11-30T02:40:00.000Z"  # the second time, at t0 + 40 min
    assert resolved["status"] == "resolved"
    assert [u["status"] for u in reversed(resolved["incident_updates"])] == ["identified", "monitoring", "resolved"]
    assert resolved["monitoring_at"] == "2026-11-30T02:09:00.000Z"
    assert '<span class="pill impact-major">monitoring</span>' in page
    assert "A fix is in place and we are making sure it holds." in page


async def test_an_incident_began_when_its_impact_did_not_when_it_was_declared(engine: Engine, tmp_path: Path) -> None:
    """Customers read "began" as when they were hurt: the alert's start (or the responder's
    entry) when warroom knows it; created_at stays the declaration, as Statuspage has it."""
    declared = NOW - timedelta(minutes=40)  # 02:20 UTC; the impact began 12 minutes before
    add_incident(engine, 11, "Mailboxes reject logins", "SEV-2", declared, ["email"],
                 [(timedelta(minutes=3), "update", "We are looking into failed mailbox logins.")],
                 impact_started_before=timedelta(minutes=12))
    add_incident(engine, 12, "Invoices are late", "SEV-3", declared - timedelta(days=1), ["billing"],
                 [(timedelta(minutes=50), "resolution", "Resolved: invoices went out.")],
                 resolved_after=timedelta(minutes=50), impact_started_before=timedelta(minutes=10))
    async with api(make_app(tmp_path, engine, clock=lambda: NOW)) as http:
        incidents = {i["id"]: i for i in (await http.get("/api/v2/incidents.json")).json()["incidents"]}
        page = (await http.get("/status")).text
        one = (await http.get("/status/incidents/11")).text
    assert incidents["11"]["started_at"] == "2026-11-30T02:08:00.000Z"
    assert incidents["11"]["created_at"] == "2026-11-30T02:20:00.000Z"
    one, page = (re.sub(r"<[^>]+>", "", html) for html in (one, page))
    assert "began 30 Nov 2026, 02:08 UTC" in one
    assert "since 30 Nov 2026, 02:08 UTC" in page
    # The history counts the resolved one from its impact: 10 minutes before declaring, 50 after.
    assert re.search(r"29 Nov 2026, 02:10 UTC\s*· lasted (1 h|60 min)", page), page


async def test_maintenance_window_puts_components_under_maintenance_and_holds_their_alerts(
    engine: Engine, tmp_path: Path
) -> None:
    labels = {"alertname": "DNSUpdateLag", "severity": "major", "component": "dns"}
    firing = {
        "version": "4", "groupKey": '{}:{alertname="DNSUpdateLag"}', "status": "firing", "receiver": "warroom",
        "groupLabels": {"alertname": "DNSUpdateLag"}, "commonLabels": labels,
        "commonAnnotations": {"summary": "DNS record updates are slow"},
        "alerts": [
            {"status": "firing", "labels": {**labels, "instance": f"ns{n}"}, "fingerprint": f"fp{n}",
             "startsAt": "2026-11-30T02:41:07Z", "endsAt": "0001-01-01T00:00:00Z"}
            for n in (1, 2)
        ],
    }
    app = make_app(tmp_path, engine, clock=lambda: NOW)
    async with api(app) as http:
        bad = [
            await http.post("/api/maintenance", json={"title": "x", "components": ["mainframe"],
                                                      "starts_at": "2026-11-30T02:00:00Z", "ends_at": "2026-11-30T04:00:00Z"}),
            await http.post("/api/maintenance", json={"title": "x", "components": ["dns"],
                                                      "starts_at": "2026-11-30T04:00:00Z", "ends_at": "2026-11-30T02:00:00Z"}),
            await http.post("/api/maintenance", json={"title": "x", "components": ["dns"],
                                                      "starts_at": "2026-11-30T02:00:00", "ends_at": "2026-11-30T04:00:00"}),
        ]
        assert [r.status_code for r in bad] == [422, 422, 422]
        assert "unknown component 'mainframe'" in bad[0].json()["detail"]
        assert "ends_at must be after starts_at" in bad[1].json()["detail"]
        assert "time zone" in bad[2].json()["detail"]
        made = await http.post("/api/maintenance", json={
            "title": "Name server upgrade", "description": "DNS changes may publish late.", "components": ["DNS"],
            "starts_at": "2026-11-30T02:30:00Z", "ends_at": "2026-11-30T04:00:00Z"})
        assert made.status_code == 201 and made.json()["components"] == ["dns"]
        upcoming = await http.post("/api/maintenance", json={
            "title": "Billing database move", "components": ["billing"],
            "starts_at": "2026-12-02T01:00:00Z", "ends_at": "2026-12-02T02:00:00Z"})
        assert upcoming.status_code == 201

        summary = (await http.get("/api/v2/summary.json")).json()
        states = {c["id"]: c["status"] for c in summary["components"]}
        assert states["dns"] == "under_maintenance" and states["billing"] == "operational"
        assert summary["status"]["indicator"] == "maintenance"
        for m in summary["scheduled_maintenances"]:
            check_incident(m, MAINTENANCE, MAINTENANCE_STATUSES)
        assert [(m["name"], m["status"]) for m in summary["scheduled_maintenances"]] == [
            ("Name server upgrade", "in_progress"), ("Billing database move", "scheduled")]
        # Each window's update says where it stands too, not "scheduled" while it runs.
        assert [[u["status"] for u in m["incident_updates"]] for m in summary["scheduled_maintenances"]] == [
            ["in_progress"], ["scheduled"]]
        page = (await http.get("/status")).text
        assert "Name server upgrade" in page and "Billing database move" in page

        # The DNS alert during the window pages nobody (no Temporal needed) but is recorded, once.
        for _ in range(2):
            held = await http.post(f"/api/webhooks/alertmanager/{app.state.test_alert_secret}", json=firing)
            assert held.status_code == 200
            assert held.json() == {"incident_id": None, "action": "held", "new_alerts": 0, "held_alerts": 2}
        from sqlalchemy import func, select
        from sqlalchemy.orm import Session

        from warroom.models.tables import HeldAlertRow, IncidentRow
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(HeldAlertRow)) == 2
            assert session.scalar(select(func.count()).select_from(IncidentRow)) == 0

        # Alerts for components not under maintenance, and resolved ones, go through as usual.
        from warroom.api import alerts as am
        from warroom.api.statuspage import hold_for_maintenance

        mixed = am.AlertmanagerPayload.model_validate({**firing, "commonLabels": {}, "alerts": [
            {**firing["alerts"][0], "fingerprint": "fp3"},
            {**firing["alerts"][0], "fingerprint": "fp4", "labels": {**labels, "component": "email"}},
            {**firing["alerts"][0], "fingerprint": "fp5", "status": "resolved"},
        ]})
        kept, held_count = await hold_for_maintenance(app.state.runtime, mixed)
        assert held_count == 1 and kept is not None
        assert [a.fingerprint for a in kept.alerts] == ["fp4", "fp5"]

        cancelled = await http.delete(f"/api/maintenance/{made.json()['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["cancelled_at"] is not None
        assert (await http.delete("/api/maintenance/999")).status_code == 404
        states = {c["id"]: c["status"] for c in (await http.get("/api/v2/components.json")).json()["components"]}
        assert states["dns"] == "operational"


async def test_page_incident_page_and_feed_show_the_incidents(populated: Engine, tmp_path: Path) -> None:
    async with api(make_app(tmp_path, populated, clock=lambda: NOW)) as http:
        page = (await http.get("/status")).text
        berlin = (await http.get("/status", params={"tz": "Europe/Berlin"})).text
        one = await http.get("/status/incidents/6")
        none = await http.get("/status/incidents/99")
        feed = await http.get("/status/history.atom")
    assert "Partial outage" in page and "DNS changes publish slowly" in page
    # Newest update first on the page.
    assert page.index("A stuck publisher was found") < page.index("We are investigating slow DNS publishing")
    # 90 days of bars per component, and the control panel's 43 minutes of major outage two days ago.
    assert page.count('class="bar"') == 5
    assert "43 min of outage" in page and "99.96 %" in page
    # UTC always; the chosen zone server-side on request (no JavaScript needed).
    assert "30 Nov 2026, 02:50 UTC" in page
    assert "(03:50 CET)" in berlin
    assert one.status_code == 200 and "Resolved: logins work again." in one.text
    # The open incident says where it stands in plain words; each update is labelled with its phase.
    assert '<p class="phase" data-phase="identified"><strong>Identified:</strong> We have found the cause' in page
    assert re.findall(r'data-status="(\w+)">\s*<p class="u-head"><strong>(\w+)</strong>', page) == [
        ("identified", "Identified"), ("investigating", "Investigating")]
    assert 'data-phase=' not in one.text  # resolved: no phase line
    assert re.findall(r'<p class="u-head"><strong>(\w+)</strong>', one.text) == ["Resolved", "Investigating"]
    assert none.status_code == 404
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = ElementTree.fromstring(feed.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert [e.findtext("a:title", namespaces=ns) for e in root.findall("a:entry", ns)] == [
        "Ongoing: DNS changes publish slowly", "Resolved: Control panel logins failed"]
    content = root.find("a:entry", ns).findtext("a:content", namespaces=ns)
    assert "<strong>Identified</strong>: A stuck publisher" in content
    assert "<strong>Investigating</strong>: We are investigating" in content


async def test_static_export_writes_the_page_json_and_feed(populated: Engine, tmp_path: Path) -> None:
    from tests.api.statuspage_helpers import settings_for

    out = tmp_path / "public"
    result = export(settings_for(tmp_path), out, engine=populated, clock=lambda: NOW)
    assert result.open_incidents == 1
    names = sorted(str(p.relative_to(out)) for p in result.files)
    assert {"index.html", "history.atom", "incidents/7.html", "incidents/6.html", "api/v2/summary.json",
            "api/v2/status.json", "api/v2/components.json", "api/v2/incidents.json",
            "api/v2/incidents/unresolved.json"} <= set(names)
    index = (out / "index.html").read_text()
    # Links work from files: relative, and the subscription form posts to the live API.
    assert 'href="incidents/7.html"' in index and 'href="api/v2/summary.json"' in index
    assert 'action="http://warroom.test/status/subscribe"' in index
    assert 'href="../index.html"' in (out / "incidents" / "7.html").read_text()
    import json

    assert json.loads((out / "api/v2/status.json").read_text())["status"]["indicator"] == "major"
    assert not list(out.rglob(".*.tmp"))


def test_watch_keeps_exporting_while_incidents_are_open(populated: Engine, tmp_path: Path) -> None:
    from tests.api.statuspage_helpers import settings_for

    out = tmp_path / "public"
    instants = iter([NOW, NOW + timedelta(minutes=1)])
    seen: list[str] = []

    def clock() -> datetime:
        now = next(instants)
        if (out / "index.html").exists():
            seen.append((out / "index.html").read_text())
        return now

    export(settings_for(tmp_path), out, engine=populated, clock=clock, watch=True, interval=0.01,
           idle_interval=60, rounds=2)
    # The second round rewrote the page: it says when it was generated.
    import re

    generated = re.compile(r"Page generated <time[^>]*>([^<]*)</time>")
    assert len(seen) == 1 and generated.search(seen[0]).group(1) == "30 Nov 2026, 03:00 UTC"
    assert generated.search((out / "index.html").read_text()).group(1) == "30 Nov 2026, 03:01 UTC"


async def test_an_incidents_impact_is_the_worst_it_reached_open_or_resolved(engine: Engine, tmp_path: Path) -> None:
    """A SEV-1 downgraded to SEV-3 once mitigated stays 'critical', while open and once resolved,
    so a reader never sees the impact jump when it ends (Statuspage keeps the worst too)."""
    declared = NOW - timedelta(minutes=40)
    add_incident(engine, 21, "Control panel down", "SEV-3", declared, ["control-panel"],
                 [(timedelta(minutes=3), "update", "Mitigated; we are watching it.")], max_severity="SEV-1")
    add_incident(engine, 22, "Control panel down again", "SEV-3", declared - timedelta(days=1), ["control-panel"],
                 [(timedelta(minutes=50), "resolution", "Resolved.")], resolved_after=timedelta(minutes=50),
                 max_severity="SEV-1")
    async with api(make_app(tmp_path, engine, clock=lambda: NOW)) as http:
        incidents = {i["id"]: i for i in (await http.get("/api/v2/incidents.json")).json()["incidents"]}
    assert (incidents["21"]["status"], incidents["21"]["impact"]) == ("investigating", "critical")
    assert (incidents["22"]["status"], incidents["22"]["impact"]) == ("resolved", "critical")
