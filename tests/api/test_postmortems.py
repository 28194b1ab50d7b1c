"""Postmortem drafts, submission, export, the due list, action items and metrics over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import WorkflowExecutionStatus

from tests.api.support import Api, eventually
from tests.access import token_for, client_as
from warroom.models.access import Role
from warroom.models.ids import action_items_workflow_id
from warroom.models.tables import NotificationRow


async def resolved(api: Api, severity: str = "SEV-2") -> int:
    inc = await api.declare(severity=severity, summary="Zone updates queue up.", components=["dns"])
    number = int(inc["id"])
    resp = await api.http.post(f"/api/incidents/{number}/resolve",
                               json={"summary": "Rolled back the publisher.", "impact": "DNS changes were late."})
    assert resp.status_code == 200, resp.text

    async def ready() -> bool:
        r = await api.http.get(f"/api/incidents/{number}/postmortem")
        return r.status_code == 200

    await eventually("the resolved incident in the read model", ready)
    return number


def complete(**changes: Any) -> dict[str, Any]:
    due = (datetime.now(UTC) + timedelta(days=14)).isoformat()
    body = {
        "summary": "DNS publishing lagged.", "timeline": "02:41 lag starts", "root_cause": "The publisher scanned "
        "every zone after a schema change.", "impact": "Changes delayed 44 min.", "what_went_well": "Paged at once.",
        "what_could_improve": "Alert on publish lag sooner.",
        "action_items": [{"title": "Index the zone table", "owner": "bob", "due": due, "priority": "high"}],
    }
    return body | changes


async def test_a_postmortem_from_prefilled_draft_to_submission_and_tracked_action_items(api: Api) -> None:
    n = await resolved(api)
    erin = await api.as_("erin")  # a responder
    fresh = (await erin.get(f"/api/incidents/{n}/postmortem")).json()
    assert (fresh["status"], fresh["saved"], fresh["revision"], fresh["severity"]) == ("not started", False, 0, "SEV-2")
    assert "Rolled back the publisher." in fresh["document"]["summary"]
    assert "Declared SEV-2 by alice" in fresh["document"]["timeline"]
    assert "Components affected: dns." in fresh["document"]["impact"]
    assert "root cause is empty" in fresh["problems"] and "systems" in fresh["prompts"]["root_cause"]
    assert fresh["hints"] == []
    assert fresh["due"]["state"] == "due"

    due = (await api.http.get("/api/postmortems/due")).json()
    assert [(d["incident_id"], d["state"], d["draft"]) for d in due] == [(n, "due", "not started")]

    # A partial draft saves; its author is the first to save, and the incident learns who it is.
    saved = await erin.put(f"/api/incidents/{n}/postmortem/draft",
                           json={**fresh["document"], "root_cause": "bob ran the migration by hand."})
    assert saved.status_code == 200, saved.text
    assert saved.json()["hints"] and saved.json()["hints"][0].startswith("root cause names bob")
    assert (saved.json()["author"], saved.json()["revision"], saved.json()["status"]) == ("erin", 1, "draft")

    async def author_known() -> bool:
        return (await api.incident(n))["postmortem"].get("author") == "erin"

    await eventually("the workflow told who writes the postmortem", author_known)

    stale = await api.http.put(f"/api/incidents/{n}/postmortem/draft", json={**complete(), "revision": 7})
    assert stale.status_code == 409 and "erin saved the draft" in stale.json()["detail"]
    # alice opened the editor before erin's first save (revision 0: nothing saved yet): her save
    # must not wipe erin's text.
    first_too = await api.http.put(f"/api/incidents/{n}/postmortem/draft", json={**complete(), "revision": 0})
    assert first_too.status_code == 409 and "since you loaded it" in first_too.json()["detail"], first_too.text
    assert "bob ran the migration" in (await erin.get(f"/api/incidents/{n}/postmortem")).json()["document"][
        "root_cause"]

    not_ready = await erin.post(f"/api/incidents/{n}/postmortem/submit", json={})
    assert not_ready.status_code == 422
    assert "action items" in not_ready.json()["detail"] and "what went well is empty" in not_ready.json()["detail"]
    assert (await api.incident(n))["status"] == "resolved"

    unknown_owner = complete(action_items=[{**complete()["action_items"][0], "owner": "mallory"}])
    assert (await erin.put(f"/api/incidents/{n}/postmortem/draft", json=unknown_owner)).status_code == 200
    refused = await erin.post(f"/api/incidents/{n}/postmortem/submit", json={})
    assert refused.status_code == 422 and "owner 'mallory' is not a person" in refused.json()["detail"]

    assert (await erin.put(f"/api/incidents/{n}/postmortem/draft", json=complete())).status_code == 200
    done = await erin.post(f"/api/incidents/{n}/postmortem/submit", json={"revision": 3})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "submitted"
    assert (await api.incident(n))["status"] == "closed"
    again = await erin.post(f"/api/incidents/{n}/postmortem/submit", json={})
    assert again.status_code == 409 and "already submitted" in again.json()["detail"]
    edit = await erin.put(f"/api/incidents/{n}/postmortem/draft", json=complete())
    assert edit.status_code == 409 and "can no longer be edited" in edit.json()["detail"]
    assert (await api.http.get("/api/postmortems/due")).json() == []

    md = await api.http.get(f"/api/incidents/{n}/postmortem.md")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    for heading in ("## Summary", "## Timeline", "## Root cause", "## Impact", "## What went well",
                    "## What could improve", "## Action items"):
        assert heading in md.text
    assert "| 1 | Index the zone table | bob |" in md.text and "- Author: erin" in md.text

    async def tracked() -> list[dict[str, Any]]:
        return list((await api.http.get("/api/action-items", params={"incident_id": n})).json())

    items = await eventually("the action item tracked", tracked)
    assert [(i["index"], i["owner"], i["priority"], i["state"]) for i in items] == [(1, "bob", "high", "open")]
    ok = await erin.post(f"/api/incidents/{n}/action-items/1/complete", json={})
    assert ok.status_code == 200 and ok.json()["message"] == f"action item 1 of #{n} is done"

    # The answer comes once the read model says so: the list shows it done at once.
    assert [(i["state"], i["done_by"]) for i in await tracked()] == [("done", "erin")]
    twice = await erin.post(f"/api/incidents/{n}/action-items/1/complete", json={})
    assert twice.status_code == 409 and "already done by erin" in twice.json()["detail"]

    audit = (await api.http.get("/api/audit", params={"incident_id": n})).json()
    got = [(e["action"], e["actor"], e["accepted"], e["status_code"]) for e in reversed(audit)][2:]
    assert got == [
        ("save_postmortem_draft", "erin", True, 200),
        ("save_postmortem_draft", "alice", False, 409),
        ("save_postmortem_draft", "alice", False, 409),
        ("submit_postmortem_draft", "erin", False, 422),
        ("save_postmortem_draft", "erin", True, 200),
        ("submit_postmortem_draft", "erin", False, 422),
        ("save_postmortem_draft", "erin", True, 200),
        ("submit_postmortem_draft", "erin", True, 200),
        ("submit_postmortem_draft", "erin", False, 409),
        ("save_postmortem_draft", "erin", False, 409),
        ("complete_action_item", "erin", True, 200),
        ("complete_action_item", "erin", False, 409),
    ], got


async def test_action_items_are_added_and_changed_after_the_postmortem(api: Api) -> None:
    """An item found later is tracked too (the finished tracker starts again with what it
    held); an open item can be handed over, moved, reworded; its new owner is told."""
    n = await resolved(api)
    soon = datetime.now(UTC) + timedelta(days=7)
    later = {"title": "Alert on publish lag", "owner": "erin", "due": soon.isoformat()}
    early = await api.http.post(f"/api/incidents/{n}/action-items", json=later)
    assert early.status_code == 409 and "add it to the postmortem draft" in early.json()["detail"], early.text
    assert (await api.http.put(f"/api/incidents/{n}/postmortem/draft", json=complete())).status_code == 200
    assert (await api.http.post(f"/api/incidents/{n}/postmortem/submit", json={})).status_code == 200

    async def tracked() -> list[tuple[int, str, str, str]]:
        items = (await api.http.get("/api/action-items", params={"incident_id": n})).json()
        return [(i["index"], i["owner"], i["state"], i["title"]) for i in items]

    await eventually("the postmortem's item tracked", tracked)
    assert (await api.http.post(f"/api/incidents/{n}/action-items/1/complete", json={})).status_code == 200
    handle = api.worker.client.get_workflow_handle(action_items_workflow_id(n))

    async def finished() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    await eventually("the tracker finished with every item done", finished)

    added = await api.http.post(f"/api/incidents/{n}/action-items", json=later,
                                headers={"Idempotency-Key": "later-1"})
    assert added.status_code == 201, added.text
    assert added.json()["message"] == f"action item 2 of #{n} added for erin"
    again = await api.http.post(f"/api/incidents/{n}/action-items", json=later,
                                headers={"Idempotency-Key": "later-1"})
    assert again.status_code == 201 and again.json()["message"] == added.json()["message"]
    assert sorted(await tracked()) == [(1, "bob", "done", "Index the zone table"),
                                       (2, "erin", "open", "Alert on publish lag")]

    def told(person: str) -> list[str]:
        with Session(api.engine) as session:
            return [r.text for r in session.scalars(select(NotificationRow).where(
                NotificationRow.incident_number == n, NotificationRow.person_id == person,
                NotificationRow.kind == "role"))]

    async def told_async(person: str) -> list[str]:
        return told(person)

    erin_told = await eventually("erin told the item is hers", lambda: told_async("erin"))
    assert "alice gave you the action item 'Alert on publish lag'" in erin_told[0]

    moved = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    patch = await api.http.patch(f"/api/incidents/{n}/action-items/2",
                                 json={"owner": "bob", "due": moved.isoformat(), "priority": "high"})
    assert patch.status_code == 200, patch.text
    assert "owner erin -> bob" in patch.json()["message"] and "priority medium -> high" in patch.json()["message"]
    items = (await api.http.get("/api/action-items", params={"incident_id": n, "status": "open"})).json()
    assert [(i["owner"], i["priority"], datetime.fromisoformat(i["due"])) for i in items] == [("bob", "high", moved)]
    await eventually("bob told the item is his", lambda: told_async("bob"))
    assert len(told("bob")) == 1 and len(told("erin")) == 1

    for body, status, reason in [
        ({"owner": "bob"}, 422, "nothing to change"),
        ({}, 422, "nothing to change"),
        ({"owner": "mallory"}, 422, "owner 'mallory' is not a person"),
        ({"due": "2020-01-01T00:00:00Z"}, 422, "already past"),
        ({"due": "2099-01-01T00:00:00"}, 422, "time zone"),
        ({"priority": "urgent"}, 422, "priority"),
        ({"title": "   "}, 422, "title: String should have at least 1 character"),
        ({"title": "x", "by": "bob"}, 403, "nobody acts in someone else's name"),
    ]:
        resp = await api.http.patch(f"/api/incidents/{n}/action-items/2", json=body)
        assert resp.status_code == status and reason in resp.json()["detail"], (body, resp.text)
    for call in (api.http.patch(f"/api/incidents/{n}/action-items/99", json={"title": "x"}),
                 api.http.post(f"/api/incidents/{n}/action-items/99/complete", json={})):
        unknown = await call  # the tracker runs: the same 404 as for an incident whose tracker ended
        assert unknown.status_code == 404 and "has no action item 99" in unknown.json()["detail"], unknown.text
    done = await api.http.patch(f"/api/incidents/{n}/action-items/1", json={"title": "Index it twice"})
    assert done.status_code == 409 and "already done by alice" in done.json()["detail"], done.text
    viewer = client_as(api.transport, token_for(api.engine, "vera", Role.VIEWER))
    async with viewer:
        assert (await viewer.patch(f"/api/incidents/{n}/action-items/2", json={"title": "y"})).status_code == 403
        assert (await viewer.post(f"/api/incidents/{n}/action-items", json=later)).status_code == 403
    open_ = await api.declare(severity="SEV-1")
    refused = await api.http.post(f"/api/incidents/{open_['id']}/action-items", json=later)
    assert refused.status_code in (404, 409), refused.text
    assert (await api.http.post("/api/incidents/2147483647/action-items", json=later)).status_code == 404
    assert sorted(await tracked())[1] == (2, "bob", "open", "Alert on publish lag")


async def test_who_may_and_what_is_refused(api: Api) -> None:
    n = await resolved(api)
    viewer = client_as(api.transport, token_for(api.engine, "vera", Role.VIEWER))
    async with viewer:
        assert (await viewer.get(f"/api/incidents/{n}/postmortem")).status_code == 200
        assert (await viewer.put(f"/api/incidents/{n}/postmortem/draft", json=complete())).status_code == 403
        assert (await viewer.get("/metrics")).status_code == 200
    assert (await api.anonymous.get("/metrics")).status_code == 401
    assert (await api.anonymous.get(f"/api/incidents/{n}/postmortem")).status_code == 401

    assert (await api.http.get("/api/incidents/2147483647/postmortem")).status_code == 404
    assert (await api.http.get("/api/incidents/2147483648/postmortem")).status_code == 422
    missing_page = await api.http.get("/incidents/2147483647/postmortem")
    assert missing_page.status_code == 404 and "incident #2147483647 not found" in missing_page.text
    assert missing_page.headers["content-type"].startswith("text/html")
    sev3 = await api.declare(severity="SEV-3")
    await api.http.post(f"/api/incidents/{sev3['id']}/resolve", json={"summary": "Fixed."})
    open_ = await api.declare(severity="SEV-1")

    async def stored() -> bool:  # the read model is written by an activity, a moment after the declaration
        return (await api.http.get(f"/api/incidents/{open_['id']}/postmortem")).status_code != 404

    await eventually("the open incident in the read model", stored)
    assert "not resolved yet" in (await api.http.get(f"/api/incidents/{open_['id']}/postmortem")).json()["detail"]

    async def sev3_refused() -> str | None:
        r = await api.http.get(f"/api/incidents/{sev3['id']}/postmortem")
        return r.json()["detail"] if r.status_code == 409 and "needs no" in r.text else None

    await eventually("SEV-3 refused", sev3_refused)
    bad = await api.http.put(f"/api/incidents/{n}/postmortem/draft", json={**complete(), "author": "mallory"})
    assert bad.status_code == 422 and "mallory" in bad.json()["detail"]
    naive = complete(action_items=[{"title": "x", "owner": "bob", "due": "2099-01-01T00:00:00"}])
    assert (await api.http.put(f"/api/incidents/{n}/postmortem/draft", json=naive)).status_code == 422
    assert (await api.http.post(f"/api/incidents/{n}/postmortem/submit", json={})).status_code == 409  # no draft
    assert (await api.http.post(f"/api/incidents/{n}/action-items/1/complete", json={})).status_code == 404


async def test_metrics_json_and_prometheus(api: Api) -> None:
    inc = await api.declare(severity="SEV-1")
    n = int(inc["id"])
    await api.http.post(f"/api/incidents/{n}/acknowledge", json={})
    # Downgraded once mitigated: it still counts as the SEV-1 it was.
    assert (await api.http.post(f"/api/incidents/{n}/severity", json={"severity": "SEV-3"})).status_code == 200
    await api.http.post(f"/api/incidents/{n}/resolve", json={"summary": "Fixed."})
    open_one = await api.declare(severity="SEV-1")  # never acknowledged, still open

    async def both_recorded() -> dict[str, Any] | None:
        body = (await api.http.get("/api/metrics", params={"period": "month"})).json()
        row = next(r for r in body["rows"] if r["severity"] == "SEV-1" and r["incidents"])
        return body if row["incidents"] == 2 and row["resolved"] == 1 else None

    body = await eventually("both incidents in the metrics", both_recorded)
    row = [r for r in body["rows"] if r["severity"] == "SEV-1" and r["incidents"]][-1]
    assert (row["acknowledged"], row["never_acknowledged"], row["open"]) == (1, 1, 1)
    assert row["mtta_seconds"] is not None and row["mttr_seconds"] >= row["mtta_seconds"]
    assert "never acknowledged" in body["definitions"]["mtta"].lower()
    assert open_one["id"] != n
    assert not [r for r in body["rows"] if r["severity"] == "SEV-3" and r["incidents"]]

    prom = await api.http.get("/metrics")
    assert prom.status_code == 200 and prom.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE warroom_mtta_seconds gauge" in prom.text
    assert 'warroom_incidents{severity="SEV-1",window="7d"} 2' in prom.text
    assert 'warroom_incidents_unacknowledged{severity="SEV-1",window="7d"} 1' in prom.text
    assert (await api.http.get("/api/metrics", params={"since": "2020-01-01T00:00:00Z"})).status_code == 422
    assert (await api.http.get("/api/metrics", params={"period": "year"})).status_code == 422
    for params in ({"until": "9999-12-31T00:00:00Z"}, {"since": "0001-01-01T00:00:00Z"},
                   {"period": "month", "since": "9998-01-01T00:00:00Z", "until": "9999-12-31T00:00:00Z"}):
        far = await api.http.get("/api/metrics", params=params)
        assert far.status_code == 422 and far.json()["detail"], (params, far.text)


async def test_the_due_list_says_how_late_an_overdue_postmortem_is(client: Any, engine: Any, tmp_path: Any) -> None:
    from tests.api.support import serving

    async with serving(client, engine, tmp_path, policy={"postmortem_within": "1s",
                                                         "postmortem_reminders_before": []}) as api:
        inc = await api.declare(severity="SEV-1")
        n = int(inc["id"])
        assert (await api.http.post(f"/api/incidents/{n}/resolve", json={"summary": "Fixed."})).status_code == 200

        async def overdue() -> list[dict[str, Any]]:
            rows = (await api.http.get("/api/postmortems/due")).json()
            return [r for r in rows if r["incident_id"] == n and r["state"] == "overdue" and r["seconds"] >= 0]

        row = (await eventually("the postmortem overdue", overdue))[0]
        assert (row["severity"], row["author"], row["draft"]) == ("SEV-1", None, "not started")
        page = await api.http.get("/postmortems")
        assert page.status_code == 200 and "overdue" in page.text and f"#{n} " in page.text


async def test_the_action_item_forms_answer_a_refusal_with_a_page(api: Api) -> None:
    """A second click on "Mark done", or the add form on an incident still open, shows the
    reason on a page (never a bare JSON answer in the browser)."""
    from tests.api.test_console import shown_error, sign_in

    erin = await sign_in(api, "erin", Role.RESPONDER)
    n = await resolved(api)
    assert (await api.http.put(f"/api/incidents/{n}/postmortem/draft", json=complete())).status_code == 200
    assert (await api.http.post(f"/api/incidents/{n}/postmortem/submit", json={})).status_code == 200

    async def tracked() -> bool:
        return bool((await api.http.get("/api/action-items", params={"incident_id": n})).json())

    await eventually("the item tracked", tracked)
    first = await erin.post(f"/incidents/{n}/action-items/1/complete")
    assert first.status_code == 303, first.text
    again = await erin.post(f"/incidents/{n}/action-items/1/complete")
    assert again.status_code == 409 and again.headers["content-type"].startswith("text/html")
    assert "already done by erin" in shown_error(again)
    garbled = await erin.post(f"/incidents/{n}/action-items", title="Alert on lag", owner="bob", due="2030-01-31junk")
    assert garbled.status_code == 422 and "&#39;2030-01-31junk&#39; is not a date" in garbled.text, garbled.text

    open_ = await api.declare(severity="SEV-2")

    async def stored() -> bool:  # in the read model, which the form reads
        return (await api.http.get(f"/api/incidents/{open_['id']}/postmortem")).status_code != 404

    await eventually("the open incident stored", stored)
    soon = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")
    early = await erin.post(f"/incidents/{open_['id']}/action-items", title="Alert on lag", owner="bob", due=soon)
    assert early.status_code in (404, 409) and early.headers["content-type"].startswith("text/html"), early.text
    assert f"incident #{open_['id']} is" in shown_error(early) and "postmortem" in shown_error(early)


async def test_an_editor_form_with_uneven_item_rows_is_refused_not_trimmed(api: Api) -> None:
    from tests.api.test_console import sign_in

    erin = await sign_in(api, "erin", Role.RESPONDER)
    n = await resolved(api)
    form = {**{k: v for k, v in complete().items() if isinstance(v, str)}, "intent": "save"}
    uneven = await erin.http.post(f"/incidents/{n}/postmortem", data={
        "csrf_token": erin.csrf, **form, "item_title": ["Index the zone table", "Alert on lag"],
        "item_owner": ["bob"], "item_due": ["2030-01-15"], "item_priority": ["high"]})
    assert uneven.status_code == 422 and "rows arrived incomplete" in uneven.text, uneven.text[-1500:]
    assert (await api.http.get(f"/api/incidents/{n}/postmortem")).json()["status"] == "not started"


async def test_the_due_lists_notice_is_shown_only_for_what_exists(api: Api) -> None:
    from tests.api.test_console import sign_in

    erin = await sign_in(api, "erin", Role.RESPONDER)
    for query in ("changed=1-99", "changed=abc", "added=abc", "added=99999999999999999999", "changed=" + "9" * 20):
        page = await erin.http.get(f"/postmortems?{query}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), (query, page.text)
        assert 'role="status"' not in page.text, query
