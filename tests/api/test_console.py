"""The responder console over HTTP: every form goes through the JSON API's command path, so it
is authorised, validated and audited the same; a refusal is a page with the reason, never a 500.

Signed-in callers use a real web session (the sign-in form, the session cookie, the CSRF field
of the rendered pages), as a browser does; ``api.http`` (alice, an API token) checks results
through the JSON API."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import ensure_user
from tests.api.support import Api, eventually, serving
from warroom.models.access import Role

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Browser:
    """A signed-in web session: the cookie lives in ``http``, the CSRF token came from a page."""

    http: httpx.AsyncClient
    csrf: str

    async def post(self, path: str, **form: Any) -> httpx.Response:
        return await self.http.post(path, data={"csrf_token": self.csrf, **form})


async def sign_in(api: Api, user: str, role: Role) -> Browser:
    """``user`` signed in through /login, with the CSRF token of the console's forms."""
    ensure_user(api.engine, user, role, password=PASSWORD)
    http = await api._exits.enter_async_context(httpx.AsyncClient(transport=api.transport,
                                                                   base_url="http://warroom.test"))
    login = await http.get("/login")
    token = CSRF.search(login.text)
    assert token, login.text
    signed = await http.post("/login", data={"username": user, "password": PASSWORD,
                                             "csrf_token": token.group(1), "next": "/console"})
    assert signed.status_code == 303, signed.text
    console = await http.get("/console")
    assert console.status_code == 200, console.text
    csrf = CSRF.search(console.text)
    assert csrf, "the console carries the session's CSRF token in its forms"
    return Browser(http, csrf.group(1))


@pytest.fixture
async def sessions(api: Api) -> dict[str, Browser]:
    """erin (responder), vera (viewer) and bob (operator), each signed in through /login."""
    people = {"erin": Role.RESPONDER, "vera": Role.VIEWER, "bob": Role.OPERATOR}
    return {user: await sign_in(api, user, role) for user, role in people.items()}


def number_of(response: httpx.Response) -> int:
    assert response.status_code == 303, response.text[:2000]
    match = re.fullmatch(r"/console/incidents/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def shown_error(response: httpx.Response) -> str:
    match = re.search(r'<p class="error" role="alert">(.*?)</p>', response.text, re.DOTALL)
    assert match, f"no reason shown on the page: {response.text[:2000]}"
    return html.unescape(match.group(1))


async def test_declare_acknowledge_update_and_resolve_through_the_forms(
    api: Api, sessions: dict[str, Browser]
) -> None:
    erin = sessions["erin"]
    form = {"title": "Control panel returns 502", "severity": "SEV-2", "components": "control-panel, dns",
            "summary": "EU customers cannot sign in.", "impact_started_at": "2026-12-03 02:41",
            "idempotency_key": "form-1"}
    number = number_of(await erin.post("/console/incidents", **form))
    again = number_of(await erin.post("/console/incidents", **form))
    assert again == number, "the same form submitted twice declares one incident"

    page = await erin.http.get(f"/console/incidents/{number}")
    assert page.status_code == 200
    assert f"Declared incident #{number}" in page.text, "the accepted command leaves a notice"
    assert f"/namespaces/default/workflows/incident-{number}" in page.text, "links the workflow in the Temporal UI"
    assert "<time data-due" in page.text and "first public status update" in page.text
    incident = await api.incident(number)
    assert incident["declared_by"] == "erin" and incident["source"] == "console"
    assert incident["components"] == ["control-panel", "dns"]
    assert incident["impact_started_at"].startswith("2026-12-03T02:41:00")
    listing = await erin.http.get("/console")
    assert f'data-incident="{number}"' in listing.text and "Control panel returns 502" in listing.text

    assert (await erin.post(f"/console/incidents/{number}/acknowledge")).status_code == 303
    incident = await api.incident(number)
    assert incident["status"] == "acknowledged" and incident["acknowledged_by"] == "erin"
    twice = await erin.post(f"/console/incidents/{number}/acknowledge")
    assert twice.status_code == 409 and "already acknowledged" in shown_error(twice).lower()

    shown = (await erin.http.get(f"/console/incidents/{number}")).text
    assert '<option value="" selected>Keep current (investigating)</option>' in shown
    assert number_of(await erin.post(f"/console/incidents/{number}/status-updates", phase="",  # keep current
                                     message="We are rolling back the deploy <script>x()</script>.")) == number
    assert number_of(await erin.post(f"/console/incidents/{number}/status-updates", phase="monitoring",
                                     message="Rolled back; watching the error rate.")) == number
    shown = (await erin.http.get(f"/console/incidents/{number}")).text
    assert "rolling back the deploy &lt;script&gt;x()&lt;/script&gt;." in shown and "<script>x()" not in shown
    assert '<option value="" selected>Keep current (monitoring)</option>' in shown
    assert '<dd id="public-phase">monitoring' in shown
    assert number_of(await erin.post(f"/console/incidents/{number}/severity", severity="SEV-1",
                                     reason="all regions now")) == number
    assert number_of(await erin.post(f"/console/incidents/{number}/roles", role="incident_commander",
                                     person="bob")) == number
    incident = await api.incident(number)
    assert incident["severity"] == "SEV-1" and incident["roles"] == {"incident_commander": "bob"}
    assert [(u["message"], u["phase"]) for u in incident["status_updates"]] == [
        ("We are rolling back the deploy <script>x()</script>.", None),
        ("Rolled back; watching the error rate.", "monitoring")]

    assert number_of(await erin.post(f"/console/incidents/{number}/resolve", summary="Rolled back 4.2.",
                                     impact="EU sign-ins failed for 20 minutes.")) == number
    incident = await api.incident(number)
    assert incident["status"] == "resolved" and incident["resolution_summary"] == "Rolled back 4.2."

    audit = await api.http.get("/api/audit", params={"incident_id": number, "limit": 50})
    entries = [(e["action"], e["path"], e["accepted"], e["actor"]) for e in audit.json()]
    for action, path in [("declare", "/console/incidents"), ("acknowledge", f"/console/incidents/{number}/acknowledge"),
                         ("post_status", f"/console/incidents/{number}/status-updates"),
                         ("change_severity", f"/console/incidents/{number}/severity"),
                         ("assign_role", f"/console/incidents/{number}/roles"),
                         ("resolve", f"/console/incidents/{number}/resolve")]:
        assert (action, path, True, "erin") in entries, f"{action} is not in the audit log: {entries}"
    assert ("acknowledge", f"/console/incidents/{number}/acknowledge", False, "erin") in entries, \
        "a refused command is audited too"
    updates = [e["detail"] for e in audit.json() if e["action"] == "post_status"]
    assert any("rolling back the deploy" in d for d in updates) and not any(erin.csrf in d for d in updates)
    assert any('"phase":"monitoring"' in d for d in updates), updates
    refused = next(e for e in audit.json() if not e["accepted"])
    assert "already acknowledged" in refused["reason"].lower()


async def test_a_responder_may_not_run_a_destructive_runbook_and_a_viewer_may_not_act(
    api: Api, sessions: dict[str, Browser]
) -> None:
    number = (await api.declare(title="Control panel hangs"))["id"]
    erin, vera = sessions["erin"], sessions["vera"]

    refused = await erin.post(f"/console/incidents/{number}/runbook-runs", runbook="service-restart",
                              confirm_destructive="on")
    assert refused.status_code == 403
    assert "needs the operator role" in shown_error(refused)
    runs = await api.http.get(f"/api/incidents/{number}/runbook-runs")
    assert runs.json() == [], "nothing ran"
    erin_page = (await erin.http.get(f"/console/incidents/{number}")).text
    assert 'id="ack-form"' in erin_page and 'name="confirm_destructive"' not in erin_page
    bob_page = (await sessions["bob"].http.get(f"/console/incidents/{number}")).text
    assert 'name="confirm_destructive"' in bob_page, "operators are offered destructive runbooks"

    viewer = await vera.post(f"/console/incidents/{number}/acknowledge")
    assert viewer.status_code == 403 and "needs the responder role" in viewer.text
    assert (await api.incident(number))["status"] == "triggered"
    vera_page = await vera.http.get(f"/console/incidents/{number}")
    assert vera_page.status_code == 200 and 'id="ack-form"' not in vera_page.text
    declared = await vera.post("/console/incidents", title="x", severity="SEV-4")
    assert declared.status_code == 403 and "needs the responder role" in declared.text

    step = (await api.incident(number))["escalation"]["step"]
    assert number_of(await erin.post(f"/console/incidents/{number}/escalate")) == number
    assert (await api.incident(number))["escalation"]["step"] == step + 1, "escalated to the next level"


async def test_a_form_without_the_sessions_csrf_token_is_refused(api: Api, sessions: dict[str, Browser]) -> None:
    number = (await api.declare())["id"]
    erin = sessions["erin"]
    for form in ({}, {"csrf_token": "not-the-token"}):
        refused = await erin.http.post(f"/console/incidents/{number}/acknowledge", data=form)
        assert refused.status_code == 403 and "CSRF token" in refused.text
    assert (await api.incident(number))["status"] == "triggered", "nothing was acknowledged"
    audit = await api.http.get("/api/audit", params={"actor": "erin", "accepted": "false", "limit": 10})
    assert any("CSRF" in e["reason"] for e in audit.json()), audit.json()


async def test_bad_input_shows_the_reason_on_the_page(api: Api, sessions: dict[str, Browser]) -> None:
    number = (await api.declare())["id"]
    erin = sessions["erin"]
    cases: list[tuple[str, dict[str, str], int, str]] = [
        (f"/console/incidents/{number}/status-updates", {"message": "   "}, 422, "message"),
        (f"/console/incidents/{number}/status-updates", {"message": "Fixed.", "phase": "fixed"}, 422,
         "unknown phase 'fixed'"),
        (f"/console/incidents/{number}/severity", {"severity": "SEV-9"}, 422, "severity"),
        (f"/console/incidents/{number}/roles", {"role": "chef", "person": "bob"}, 422, "role"),
        (f"/console/incidents/{number}/roles", {"role": "ic", "person": "zoe"}, 422, "not a known person"),
        (f"/console/incidents/{number}/resolve", {"summary": ""}, 422, "summary"),
        (f"/console/incidents/{number}/runbook-runs", {"runbook": "scale-up", "params": "replicas"}, 422,
         "name=value"),
        (f"/console/incidents/{number}/runbook-runs", {"runbook": "no-such-runbook"}, 404, "no runbook"),
        ("/console/incidents", {"title": "", "severity": "SEV-2"}, 422, "title"),
        ("/console/incidents", {"title": "DNS slow", "severity": ""}, 422, "severity: Field required"),
        ("/console/incidents", {"title": "DNS slow", "severity": "SEV-2", "impact_started_at": "yesterday"}, 422,
         "impact_started_at"),
        ("/console/incidents/2000000001/acknowledge", {}, 404, "not found"),
    ]
    for path, form, status, reason in cases:
        response = await erin.post(path, **form)
        assert response.status_code == status, f"{path} {form}: {response.status_code} {response.text[:500]}"
        assert reason in shown_error(response), f"{path} {form}: {shown_error(response)}"
    too_big = await erin.post(f"/console/incidents/{2**31}/acknowledge")
    assert too_big.status_code == 422
    assert (await api.incident(number))["status"] == "triggered"
    unknown = await erin.http.get("/console/incidents/2000000001")
    assert unknown.status_code == 404 and "not found" in unknown.text


RUNBOOK = """\
title: Drain the stuck mail queue
when_to_use: Outbound mail piles up on one relay.
steps:
  - name: Pause the relay in the load balancer
    kind: manual
    instruction: Take relay-2 out of the pool and say so here.
  - name: Second operator agrees to purge the queue
    kind: approval
    instruction: Check that the queued mail is spam before approving.
"""


@pytest.fixture
async def runbook_api(client: Client, engine: Engine, tmp_path: Path) -> AsyncIterator[Api]:
    """The API with a one-runbook catalogue: a manual step, then an approval."""
    catalogue = tmp_path / "runbooks"
    catalogue.mkdir()
    (catalogue / "drain-mail-queue.yaml").write_text(RUNBOOK, encoding="utf-8")
    async with serving(client, engine, tmp_path, runbooks_dir=catalogue) as a:
        yield a


async def test_run_a_runbook_confirm_its_manual_step_and_only_an_operator_approves(runbook_api: Api) -> None:
    api = runbook_api
    erin, bob = await sign_in(api, "erin", Role.RESPONDER), await sign_in(api, "bob", Role.OPERATOR)
    number = (await api.declare(title="Outbound mail is stuck", severity="SEV-3"))["id"]
    base = f"/console/incidents/{number}"

    assert number_of(await erin.post(f"{base}/runbook-runs", runbook="drain-mail-queue",
                                     reason="relay-2 queue at 40k")) == number

    async def step(index: int, status: str) -> bool:
        r = await api.http.get(f"/api/incidents/{number}/runbook-runs/1")
        return r.status_code == 200 and r.json()["steps"][index - 1]["status"] == status

    await eventually("the manual step waits", lambda: step(1, "waiting"))
    page = (await erin.http.get(base)).text
    assert f"{base}/runbook-runs/1/steps/1/confirm" in page, "the waiting manual step offers its confirm form"
    assert number_of(await erin.post(f"{base}/runbook-runs/1/steps/1/confirm", note="relay-2 is out")) == number
    await eventually("the approval waits", lambda: step(2, "waiting"))

    erin_page = (await erin.http.get(base)).text
    assert "waits for an operator's approval" in erin_page and "/steps/2/approve" not in erin_page
    refused = await erin.post(f"{base}/runbook-runs/1/steps/2/approve", decision="approve")
    assert refused.status_code == 403 and "needs the operator role" in refused.text
    assert await step(2, "waiting"), "a responder's approval changed nothing"

    assert "/steps/2/approve" in (await bob.http.get(base)).text
    assert number_of(await bob.post(f"{base}/runbook-runs/1/steps/2/approve", decision="approve")) == number

    async def finished() -> dict[str, Any] | None:
        r = await api.http.get(f"/api/incidents/{number}/runbook-runs/1")
        return r.json() if r.json()["status"] == "succeeded" else None

    run = await eventually("the run succeeds", finished)
    assert [(s["status"], s["actor"]) for s in run["steps"]] == [("succeeded", "erin"), ("succeeded", "bob")]


async def test_without_temporal_the_pages_show_the_stored_state_and_commands_say_why(api: Api) -> None:
    """Temporal unreachable: the incident page falls back to the read model with a warning, and a
    command is refused with the reason (503), not a server error."""
    from asgi_lifespan import LifespanManager

    from tests.access import client_as, token_for
    from warroom.api.app import create_app
    from warroom.settings import Settings
    from warroom.temporal import DATA_CONVERTER

    number = (await api.declare(title="Billing page is blank"))["id"]

    async def stored() -> bool:
        r = await api.http.get("/console")
        return f'data-incident="{number}"' in r.text

    await eventually("the read model has the incident", stored)
    nowhere = await Client.connect("127.0.0.1:1", data_converter=DATA_CONVERTER, lazy=True)
    settings = api.settings.model_copy(update={"command_timeout_seconds": 1.0})
    assert isinstance(settings, Settings)
    app = create_app(settings, client=nowhere, engine=api.engine)
    async with LifespanManager(app) as manager:
        async with client_as(httpx.ASGITransport(app=manager.app), token_for(api.engine, "erin")) as erin:
            page = await erin.get(f"/console/incidents/{number}")
            assert page.status_code == 200, page.text[:500]
            assert "Billing page is blank" in page.text and "did not answer in time" in page.text
            assert "<time data-due" in page.text, "the deadlines come from the stored state"
            ack = await erin.post(f"/console/incidents/{number}/acknowledge")
            assert ack.status_code == 503 and "Temporal is unreachable" in shown_error(ack)
    assert (await api.incident(number))["status"] == "triggered"
