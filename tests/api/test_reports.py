"""Customer reports: the status page form and the API, abuse refused or neutralised, the
triage list, attach or declare (through the API and the /reports page's forms), and a burst of
reports raising an alert through the intake."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import client_as, token_for
from tests.api.support import Api, eventually, serving
from tests.api.test_console import Browser, shown_error, sign_in
from warroom.models.access import Role


@pytest.fixture
async def api(client: Client, engine: Engine, tmp_path: Path) -> AsyncIterator[Api]:
    detection = {"reports": {"count": 3, "within": "10m", "severity": "SEV-2"}}
    async with serving(client, engine, tmp_path, detection=detection, report_rate_burst=50) as a:
        yield a


async def report(api: Api, **body: Any) -> Any:
    return await api.anonymous.post("/api/reports", json={"text": "The control panel shows a 502", **body})


async def triage(api: Api) -> list[dict[str, Any]]:
    resp = await api.http.get("/api/reports")
    assert resp.status_code == 200, resp.text
    return list(resp.json())


async def test_form_on_the_status_page_files_a_report(api: Api) -> None:
    page = (await api.anonymous.get("/status")).text
    assert 'action="/status/report"' in page and "Report a problem" in page
    resp = await api.anonymous.post("/status/report", data={"text": "Cannot log in", "component": "control-panel",
                                                            "contact": "pat@example.com"})
    assert resp.status_code == 201, resp.text
    assert "We received your report" in resp.text
    [r] = await triage(api)
    assert (r["text"], r["component"], r["contact"], r["status"]) == (
        "Cannot log in", "control-panel", "pat@example.com", "new")


async def test_abuse_is_refused_or_neutralised(client: Client, engine: Engine, tmp_path: Path) -> None:
    async with serving(client, engine, tmp_path, report_rate_burst=3, report_rate_per_minute=0.01) as api:
        script = await report(api, text='<script>alert("x")</script>Panel <b>down</b> <img src=x onerror=alert(1)>')
        assert script.status_code == 201, script.text
        too_long = await report(api, text="x" * 2001)
        assert too_long.status_code == 422 and "2000" in too_long.json()["detail"]
        only_markup = await report(api, text="<script></script>")
        assert only_markup.status_code == 422 and "plain text" in only_markup.json()["detail"]
        unknown = await report(api, component="the-moon")
        assert unknown.status_code == 422 and "unknown component" in unknown.json()["detail"]
        extra = await report(api, html="<p>")
        assert extra.status_code == 422
        [stored] = await triage(api)
        assert stored["text"] == 'alert("x")Panel down'
        assert "<" not in stored["text"] and ">" not in stored["text"]
        # the form takes the markup out too (the unknown component above used up a report as well)
        form = await api.anonymous.post("/status/report", data={"text": "<script>alert(1)</script>"})
        assert form.status_code == 201 and "<script>alert(1)" not in form.text
        limited = await report(api)
        assert limited.status_code == 429 and "too many problem reports" in limited.json()["detail"]
        assert "retry-after" in limited.headers
        form_limited = await api.anonymous.post("/status/report", data={"text": "still down"})
        assert form_limited.status_code == 429 and "too many" in form_limited.text
        assert int(form_limited.headers["retry-after"]) > 0
        assert [r["text"] for r in await triage(api)] == ["alert(1)", 'alert("x")Panel down']


async def test_the_form_takes_a_full_report_in_any_script(api: Api) -> None:
    """A browser sends each character percent-encoded (9 bytes for one of Chinese, 12 for an
    emoji): a report at its 2000-character limit is taken, one past it is refused by its length."""
    for char in ("日", "é", "\U0001F525"):
        full = await api.anonymous.post("/status/report", data={"text": char * 2000, "component": "dns",
                                                                "contact": "ü" * 200},
                                        headers={"X-Forwarded-For": f"203.0.113.{ord(char) % 250}"})
        assert full.status_code == 201, (char, full.status_code)
    over = await api.anonymous.post("/status/report", data={"text": "日" * 2001},
                                    headers={"X-Forwarded-For": "203.0.113.251"})
    assert over.status_code == 422 and "2000" in over.text


async def test_attach_and_declare_from_the_triage_list(api: Api) -> None:
    first = (await report(api, component="dns", text="My domain stopped resolving")).json()["id"]
    second = (await report(api, component="email", text="Mail bounces")).json()["id"]
    inc = await api.declare(title="DNS resolution failing", components=["dns"])

    attached = await api.http.post(f"/api/reports/{first}/attach", json={"incident_id": inc["id"]})
    assert attached.status_code == 200, attached.text
    assert (attached.json()["status"], attached.json()["incident_id"], attached.json()["handled_by"]) == (
        "attached", inc["id"], "alice")
    detail = await api.incident(inc["id"])
    assert any("Customer report" in e["text"] and "stopped resolving" in e["text"] for e in detail["timeline"])
    again = await api.http.post(f"/api/reports/{first}/attach", json={"incident_id": inc["id"]})
    assert again.status_code == 409 and "already attached" in again.json()["detail"]
    missing = await api.http.post(f"/api/reports/{second}/attach", json={"incident_id": 2**31 - 1})
    assert missing.status_code == 404

    blank = await api.http.post(f"/api/reports/{second}/declare", json={"title": " "})
    assert blank.status_code == 422 and "give the incident a title" in str(blank.json()["detail"])
    declared = await api.http.post(f"/api/reports/{second}/declare", json={"severity": "SEV-3"})
    assert declared.status_code == 200, declared.text
    number = declared.json()["incident_id"]
    new = await api.incident(number)
    assert (new["severity"], new["components"], new["source"]) == ("SEV-3", ["email"], "reports")
    assert new["title"] == f"Customer report #{second}: Mail bounces", "without a title: the report's first line"

    third = (await report(api, text="Is the sky falling?")).json()["id"]
    dismissed = await api.http.post(f"/api/reports/{third}/dismiss")
    assert (dismissed.json()["status"], dismissed.json()["incident_id"]) == ("dismissed", None)
    late = await api.http.post(f"/api/reports/{third}/declare", json={})
    assert late.status_code == 409 and "already dismissed" in late.json()["detail"]
    assert [r["status"] for r in await triage(api)] == ["dismissed", "declared", "attached"]
    assert (await api.http.post("/api/reports/2147483648/dismiss")).status_code == 422

    vic = await asyncio.to_thread(token_for, api.engine, "vic", Role.VIEWER)
    async with client_as(api.transport, vic) as viewer:
        assert (await viewer.get("/api/reports")).status_code == 403  # reports carry customers' contacts
    assert (await api.anonymous.get("/api/reports")).status_code == 401


async def test_a_burst_of_reports_for_one_component_raises_one_alert(api: Api) -> None:
    for n in range(2):
        assert (await report(api, component="billing", text=f"Invoice page broken {n}")).status_code == 201
    assert (await api.http.get("/api/incidents")).json() == []
    assert (await report(api, component="billing", text="Cannot pay")).status_code == 201
    assert (await report(api, component="billing", text="Still cannot pay")).status_code == 201
    [inc] = await eventually("the incident in the read model", lambda: listed(api))
    assert (await api.http.get("/api/alert-deliveries", params={"source": "reports"})).json()[0]["outcome"] == "declared"
    assert (inc["source"], inc["severity"], inc["components"]) == ("reports", "SEV-2", ["billing"])
    assert "3 customer reports within 10 minutes" in inc["title"]


async def listed(api: Api) -> list[dict[str, Any]]:
    return list((await api.http.get("/api/incidents")).json())


# --- the triage page: /reports and its forms ---------------------------------------------------------------
# Signed-in people use a real web session (tests.api.test_console.sign_in: the sign-in form, the session cookie,
# the CSRF field of the rendered page); api.http (alice, an API token) checks results through the JSON API.


def report_row(page: str, report_id: int) -> str:
    """The page's row of one waiting report (empty if the report is not listed as waiting)."""
    match = re.search(rf'<tr id="report-{report_id}">(.*?)</tr>', page, re.DOTALL)
    return match.group(1) if match else ""


def redirected_to(response: httpx.Response) -> str:
    assert response.status_code == 303, f"{response.status_code} {response.text[:2000]}"
    return response.headers["location"]


async def by_id(api: Api, report_id: int) -> dict[str, Any]:
    return next(r for r in await triage(api) if r["id"] == report_id)


async def open_in_page(browser: Browser, number: int) -> bool:
    """The incident is offered in the attach form (it has reached the read model)."""
    return f'<option value="{number}"' in (await browser.http.get("/reports")).text


async def test_a_responder_triages_reports_on_the_page(api: Api) -> None:
    erin = await sign_in(api, "erin", Role.RESPONDER)
    first = (await report(api, component="dns", text='Tom & Jerry\'s "shop" stopped resolving')).json()["id"]
    second = (await report(api, component="email", text="Mail bounces\nsince 09:00")).json()["id"]
    third = (await report(api, text="Is the sky falling?", contact="+1 555 010 0123")).json()["id"]
    inc = await api.declare(title="DNS resolution failing", components=["dns"])
    await eventually("the open incident is offered", lambda: open_in_page(erin, inc["id"]))

    listing = await erin.http.get("/reports")
    assert listing.status_code == 200
    page = listing.text
    assert page.index(f'id="report-{third}"') < page.index(f'id="report-{second}"') < page.index(
        f'id="report-{first}"'), "newest first"
    row = report_row(page, first)
    assert "dns" in row and "Tom &amp; Jerry&#39;s &#34;shop&#34; stopped resolving" in row, "the text, escaped"
    assert 'Tom & Jerry\'s "shop"' not in row
    assert "+1 555 010 0123" in report_row(page, third), "responders see the contact"
    for action in ("attach", "declare", "dismiss"):
        assert f'action="/reports/{first}/{action}"' in row
    assert f'<input type="hidden" name="csrf_token" value="{erin.csrf}">' in row
    assert f'<option value="{inc["id"]}">#{inc["id"]} DNS resolution failing</option>' in row
    assert f'value="Customer report #{second}: Mail bounces"' in report_row(page, second), "the title is prefilled"
    assert '<a href="/reports">Reports</a>' in page and '<a href="/reports">Reports</a>' in (
        await erin.http.get("/console")).text, "both bars link the page"

    # Attach: the report joins the incident's timeline, the page says so and lists it as handled.
    assert redirected_to(await erin.post(f"/reports/{first}/attach", incident_id=str(inc["id"]))) == (
        f"/reports?attached={first}")
    attached = await by_id(api, first)
    assert (attached["status"], attached["incident_id"], attached["handled_by"]) == ("attached", inc["id"], "erin")
    timeline = (await api.incident(inc["id"]))["timeline"]
    assert any(f"Customer report #{first}" in e["text"] for e in timeline)
    after = (await erin.http.get(f"/reports?attached={first}")).text
    assert f"Report #{first} attached to incident #{inc['id']}." in after
    assert not report_row(after, first), "no longer waiting"
    handled = re.search(rf'<tr id="handled-{first}">(.*?)</tr>', after, re.DOTALL)
    assert handled and f"incident #{inc['id']}" in handled.group(1) and "erin" in handled.group(1)

    # Declare, with the title and severity of the form; the same form again declares nothing more.
    form = {"title": "Mail bounces for EU customers", "severity": "SEV-2"}
    assert redirected_to(await erin.post(f"/reports/{second}/declare", **form)) == f"/reports?declared={second}"
    declared = await by_id(api, second)
    assert (declared["status"], declared["handled_by"]) == ("declared", "erin")
    number = declared["incident_id"]
    new = await api.incident(number)
    assert (new["title"], new["severity"], new["components"], new["source"]) == (
        "Mail bounces for EU customers", "SEV-2", ["email"], "reports")
    notice = (await erin.http.get(f"/reports?declared={second}")).text
    assert f"Declared incident #{number} from report #{second}" in notice
    twice = await erin.post(f"/reports/{second}/declare", **form)
    assert twice.status_code == 409 and f"already declared (incident #{number})" in shown_error(twice)
    titles = [i["title"] for i in (await api.http.get("/api/incidents")).json()]
    assert titles.count("Mail bounces for EU customers") <= 1 and (await by_id(api, second))["incident_id"] == number

    # Dismiss, with a reason for the audit log.
    assert redirected_to(await erin.post(f"/reports/{third}/dismiss", reason="a question, answered by mail")) == (
        f"/reports?dismissed={third}")
    assert ((await by_id(api, third))["status"], (await by_id(api, third))["incident_id"]) == ("dismissed", None)
    assert f"Report #{third} dismissed." in (await erin.http.get(f"/reports?dismissed={third}")).text

    # Audited as the JSON routes are: their action names, the page's paths, the caller.
    audit = (await api.http.get("/api/audit", params={"actor": "erin", "limit": 50})).json()
    entries = {(e["action"], e["path"], e["accepted"]) for e in audit}
    for action, report_id in (("attach", first), ("declare", second), ("dismiss", third)):
        assert (action, f"/reports/{report_id}/{action}", True) in entries, entries
    assert ("declare", f"/reports/{second}/declare", False) in entries, "the refused second declaration too"
    dismissal = next(e for e in audit if e["action"] == "dismiss")
    assert "a question, answered by mail" in dismissal["detail"] and erin.csrf not in dismissal["detail"]
    assert next(e for e in audit if e["action"] == "attach" and e["accepted"])["incident_id"] == inc["id"]


async def test_a_title_from_a_customers_words_is_masked_in_the_audit_log(api: Api) -> None:
    erin = await sign_in(api, "erin", Role.RESPONDER)
    rid = (await report(api, component="billing", text="pat@example.com cannot pay, call +1 555 010 0123")).json()["id"]
    title = re.search(r'name="title" maxlength="300" value="([^"]*)"', report_row((await erin.http.get("/reports")).text,
                                                                                   rid))
    assert title and "p***@example.com" in title.group(1), "the prefilled title is public-safe already"
    assert redirected_to(await erin.post(f"/reports/{rid}/declare", title=title.group(1), severity="SEV-3"))
    [entry] = [e for e in (await api.http.get("/api/audit", params={"actor": "erin"})).json()
               if e["action"] == "declare"]
    assert "p***@example.com" in entry["detail"] and "***0123" in entry["detail"], entry["detail"]
    assert "pat@example.com" not in entry["detail"] and "555 010" not in entry["detail"]


async def test_a_viewer_reads_the_page_without_forms_or_contacts_and_may_not_post(api: Api) -> None:
    vera = await sign_in(api, "vera", Role.VIEWER)
    rid = (await report(api, component="dns", text="Down for me, write to pat@example.com",
                        contact="+1 555 010 0123")).json()["id"]
    page = await vera.http.get("/reports")
    assert page.status_code == 200
    row = report_row(page.text, rid)
    assert "Down for me, write to p***@example.com" in row, "a viewer sees the report, its address masked"
    assert "pat@example.com" not in page.text and "555 010" not in page.text, "nor any contact"
    assert "<form" not in page.text.split("</nav>", 1)[1], "no action forms"
    for action, form in (("dismiss", {}), ("declare", {"title": "x", "severity": "SEV-4"}),
                         ("attach", {"incident_id": "1"})):
        refused = await vera.post(f"/reports/{rid}/{action}", **form)
        assert refused.status_code == 403 and "needs the responder role" in refused.text, refused.text[:500]
    assert (await by_id(api, rid))["status"] == "new", "nothing changed"
    anonymous = await api.anonymous.get("/reports")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


async def test_a_bad_form_shows_the_reason_with_the_apis_status(api: Api) -> None:
    erin = await sign_in(api, "erin", Role.RESPONDER)
    rid = (await report(api, component="dns", text="Slow lookups")).json()["id"]
    done = (await report(api, text="Spam")).json()["id"]
    assert (await api.http.post(f"/api/reports/{done}/dismiss")).status_code == 200
    cases: list[tuple[str, dict[str, str], int, str]] = [
        (f"/reports/{rid}/attach", {"incident_id": "2000000001"}, 404, "incident #2000000001 not found"),
        (f"/reports/{rid}/attach", {}, 422, "incident_id: Field required"),
        (f"/reports/{rid}/attach", {"incident_id": "first"}, 422, "incident_id"),
        (f"/reports/{rid}/declare", {"title": "", "severity": "SEV-3"}, 422, "give the incident a title"),
        (f"/reports/{rid}/declare", {"title": "   ", "severity": "SEV-3"}, 422, "give the incident a title"),
        (f"/reports/{rid}/declare", {"title": "x" * 301, "severity": "SEV-3"}, 422, "title"),
        (f"/reports/{rid}/declare", {"title": "Slow lookups", "severity": "SEV-9"}, 422, "severity"),
        (f"/reports/{rid}/dismiss", {"reason": "r" * 301}, 422, "reason"),
        (f"/reports/{done}/dismiss", {}, 409, f"report #{done} is already dismissed"),
        ("/reports/2000000001/dismiss", {}, 404, "no customer report #2000000001"),
    ]
    for path, form, status, reason in cases:
        response = await erin.post(path, **form)
        assert response.status_code == status, f"{path} {form}: {response.status_code} {response.text[:500]}"
        assert reason in shown_error(response), f"{path} {form}: {shown_error(response)}"
    kept = await erin.post(f"/reports/{rid}/declare", title="", severity="SEV-1")
    assert '<option value="SEV-1" selected>' in report_row(kept.text, rid), "the form keeps what was chosen"
    assert (await by_id(api, rid))["status"] == "new", "nothing happened to the report"
    refused = [e for e in (await api.http.get("/api/audit", params={"actor": "erin", "accepted": "false"})).json()]
    assert any(e["action"] == "attach" and "not found" in e["reason"] for e in refused), refused


async def test_a_customers_phone_and_address_never_reach_the_public_page(api: Api) -> None:
    """The report keeps the customer's contact for responders; the incident made from it (a
    public title, a timeline viewers read, pages) carries the number and address masked."""
    text = "Login broken! call Bob at +1 212 555 0199 or bob.smith@gmail.com"
    first = (await report(api, component="control-panel", text=text, contact="bob.smith@gmail.com")).json()["id"]
    second = (await report(api, component="dns", text=text)).json()["id"]
    declared = await api.http.post(f"/api/reports/{first}/declare", json={"severity": "SEV-3"})
    assert declared.status_code == 200, declared.text
    number = declared.json()["incident_id"]
    inc = await api.declare(title="DNS resolution failing", components=["dns"])
    assert (await api.http.post(f"/api/reports/{second}/attach", json={"incident_id": inc["id"]})).status_code == 200

    new = await api.incident(number)
    assert new["title"] == f"Customer report #{first}: Login broken! call Bob at ***0199 or b***@gmail.com"
    joined = await api.incident(inc["id"])
    timeline = " ".join(e["text"] for n in (new, joined) for e in n["timeline"])
    assert "***0199" in timeline
    status_page = (await api.anonymous.get("/status")).text + (await api.anonymous.get("/api/v2/incidents.json")).text
    for secret in ("555 0199", "bob.smith", "2125550199"):
        assert secret not in timeline and secret not in status_page, secret
    kept = {r["id"]: r for r in await triage(api)}
    assert kept[first]["text"] == text and kept[first]["contact"] == "bob.smith@gmail.com"


async def test_two_commands_on_one_report_at_once_act_once(api: Api) -> None:
    """Two responders (or a double click) on the same report: one command acts, the other is
    told the report was taken, and the record says what really happened."""
    inc = await api.declare(title="Panel errors", components=["control-panel"])
    for second_command in ("dismiss", "declare", "attach"):
        rid = (await report(api, component="control-panel", text=f"502 again ({second_command})")).json()["id"]
        attach = api.http.post(f"/api/reports/{rid}/attach", json={"incident_id": inc["id"]})
        other = api.http.post(f"/api/reports/{rid}/{second_command}",
                              json={"incident_id": inc["id"]} if second_command == "attach" else {})
        answers = await asyncio.gather(attach, other)
        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 409], (second_command, [a.text for a in answers])
        [won] = [a.json() for a in answers if a.status_code == 200]
        [lost] = [a.json()["detail"] for a in answers if a.status_code == 409]
        assert f"report #{rid}" in lost, lost
        kept = {r["id"]: r for r in await triage(api)}[rid]
        assert (kept["status"], kept["incident_id"]) == (won["status"], won["incident_id"])
        detail = await api.incident(inc["id"])
        joined = [e for e in detail["timeline"] if f"Customer report #{rid}" in e["text"]]
        assert len(joined) == (1 if kept["status"] == "attached" else 0), (second_command, kept, joined)


async def test_a_report_attached_to_a_closed_incident_is_refused_with_the_reason(api: Api) -> None:
    inc = await api.declare(title="Billing page slow", severity="SEV-4", components=["billing"])
    assert (await api.http.post(f"/api/incidents/{inc['id']}/resolve", json={"summary": "Fixed."})).status_code == 200

    async def closed() -> bool:
        return (await api.incident(inc["id"]))["status"] == "closed"

    await eventually("the SEV-4 closed (it needs no postmortem)", closed)
    rid = (await report(api, component="billing", text="Invoices load slowly")).json()["id"]

    async def refused() -> Any:
        resp = await api.http.post(f"/api/reports/{rid}/attach", json={"incident_id": inc["id"]})
        return resp if resp.status_code != 503 else None

    resp = await eventually("an answer", refused)
    assert resp.status_code == 409 and f"incident #{inc['id']} is closed" in resp.json()["detail"], resp.text
    assert {r["id"]: r for r in await triage(api)}[rid]["status"] == "new", "the report goes back to the list"
