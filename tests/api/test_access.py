"""Who may call what: every route, called with every kind of identity, answers as its rule says.

The app runs in-process against the session's Temporal dev server without a
worker: commands get a body no route accepts, so an allowed caller gets 422
(the body was looked at only after the caller was let in) and nothing runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import (
    bearer,
    client_as,
    ensure_user,
    expired_token,
    integration_secret,
    revoked_token,
    token_for,
)
from tests.stack import write_policy
from warroom.api.app import create_app
from warroom.api.auth import access_of, routes_of
from warroom.api.middleware import script_hashes
from warroom.models.access import Role
from warroom.settings import Settings

V, R, O, A = Role.VIEWER, Role.RESPONDER, Role.OPERATOR, Role.ADMIN

# Every route and its rule. A new route fails test_the_table_names_every_route until it is added here.
#   ("role", X): API route for X and above;   ("page", X): web page for X and above (no identity: to /login)
#   "public", "integration" (alert webhooks), "twilio" (X-Twilio-Signature), "login" (needs the form's CSRF cookie),
#   "slack" (X-Slack-Signature; refused while Slack is not configured)
RULES: dict[tuple[str, str], Any] = {
    ("GET", "/healthz"): "public",
    ("POST", "/api/incidents"): ("role", R),
    ("GET", "/api/incidents"): ("role", V),
    ("GET", "/api/incidents/{incident_id}"): ("role", V),
    ("POST", "/api/incidents/{incident_id}/acknowledge"): ("role", R),
    ("POST", "/api/incidents/{incident_id}/escalate"): ("role", R),
    ("POST", "/api/incidents/{incident_id}/status-updates"): ("role", R),
    ("POST", "/api/incidents/{incident_id}/roles"): ("role", R),
    ("POST", "/api/incidents/{incident_id}/severity"): ("role", R),
    ("POST", "/api/incidents/{incident_id}/resolve"): ("role", R),
    ("POST", "/api/incidents/{incident_id}/postmortem"): ("role", R),
    ("GET", "/api/notifications"): ("role", V),
    ("POST", "/api/webhooks/alertmanager"): "integration",
    ("POST", "/api/webhooks/alertmanager/{token}"): "integration",
    # Detection: each source takes only its own integration's secret (the table's is an Alertmanager's).
    ("POST", "/api/webhooks/grafana"): ("integration", "grafana"),
    ("POST", "/api/webhooks/grafana/{token}"): ("integration", "grafana"),
    ("POST", "/api/webhooks/generic"): ("integration", "generic"),
    ("POST", "/api/webhooks/generic/{token}"): ("integration", "generic"),
    ("POST", "/api/heartbeats/{name}"): ("integration", "heartbeat"),
    ("POST", "/api/heartbeats/{name}/{token}"): ("integration", "heartbeat"),
    ("GET", "/api/alert-deliveries"): ("role", V),
    ("GET", "/api/alert-deliveries/{delivery_id}"): ("role", V),
    ("GET", "/api/uptime-checks"): ("role", V),
    ("POST", "/api/reports"): "public",
    ("POST", "/status/report"): "public",
    ("GET", "/api/reports"): ("role", R),
    ("POST", "/api/reports/{report_id}/attach"): ("role", R),
    ("POST", "/api/reports/{report_id}/declare"): ("role", R),
    ("POST", "/api/reports/{report_id}/dismiss"): ("role", R),
    ("GET", "/reports"): ("page", V),
    ("POST", "/reports/{report_id}/attach"): ("page", R),
    ("POST", "/reports/{report_id}/declare"): ("page", R),
    ("POST", "/reports/{report_id}/dismiss"): ("page", R),
    ("GET", "/api/runbooks"): ("role", V),
    ("GET", "/api/runbooks/{runbook_id}"): ("role", V),
    ("POST", "/api/incidents/{incident_id}/runbook-runs"): ("role", R),
    ("GET", "/api/incidents/{incident_id}/runbook-runs"): ("role", V),
    ("GET", "/api/incidents/{incident_id}/runbook-runs/{run}"): ("role", V),
    ("POST", "/api/incidents/{incident_id}/runbook-runs/{run}/abort"): ("role", R),
    ("POST", "/api/incidents/{incident_id}/runbook-runs/{run}/steps/{step}/confirm"): ("role", R),
    ("POST", "/api/incidents/{incident_id}/runbook-runs/{run}/steps/{step}/approve"): ("role", O),
    ("GET", "/status"): "public",
    ("GET", "/status/incidents/{number}"): "public",
    ("GET", "/status/history.atom"): "public",
    ("GET", "/api/v2/{document:path}"): "public",
    ("POST", "/status/subscribe"): "public",
    ("GET", "/status/subscriptions/confirm"): "public",
    ("POST", "/status/subscriptions/confirm"): "public",
    ("POST", "/status/subscriptions/verify"): "public",
    ("GET", "/status/unsubscribe"): "public",
    ("POST", "/status/unsubscribe"): "public",
    ("POST", "/api/maintenance"): ("role", O),
    ("GET", "/api/maintenance"): ("role", V),
    ("DELETE", "/api/maintenance/{window_id}"): ("role", O),
    ("POST", "/api/incidents/{incident_id}/components"): ("role", O),
    ("POST", "/api/webhooks/twilio/sms"): "twilio",
    ("POST", "/api/webhooks/twilio/voice"): "twilio",
    ("POST", "/api/webhooks/twilio/status"): "twilio",
    ("POST", "/api/slack/commands"): "slack",
    ("POST", "/api/slack/interactions"): "slack",
    ("POST", "/api/slack/events"): "slack",
    ("GET", "/login"): "public",
    ("POST", "/login"): "login",
    ("POST", "/logout"): ("page", V),
    ("GET", "/account"): ("page", V),
    ("POST", "/account/password"): ("page", V),
    ("GET", "/api/me"): ("role", V),
    ("GET", "/console"): ("page", V),
    ("GET", "/console/incidents/{incident_id}"): ("page", V),
    ("POST", "/console/incidents"): ("page", R),
    ("POST", "/console/incidents/{incident_id}/acknowledge"): ("page", R),
    ("POST", "/console/incidents/{incident_id}/status-updates"): ("page", R),
    ("POST", "/console/incidents/{incident_id}/severity"): ("page", R),
    ("POST", "/console/incidents/{incident_id}/roles"): ("page", R),
    ("POST", "/console/incidents/{incident_id}/resolve"): ("page", R),
    ("POST", "/console/incidents/{incident_id}/runbook-runs"): ("page", R),
    ("POST", "/console/incidents/{incident_id}/runbook-runs/{run}/abort"): ("page", R),
    ("POST", "/console/incidents/{incident_id}/runbook-runs/{run}/steps/{step}/confirm"): ("page", R),
    ("POST", "/console/incidents/{incident_id}/runbook-runs/{run}/steps/{step}/approve"): ("page", O),
    ("POST", "/console/incidents/{incident_id}/escalate"): ("page", R),
    ("GET", "/api/oncall"): ("role", V),
    ("GET", "/api/oncall/preview"): ("role", V),
    ("GET", "/api/oncall/config"): ("role", A),
    ("PUT", "/api/oncall/config"): ("role", A),
    ("PATCH", "/api/oncall/config"): ("role", A),
    ("GET", "/api/admin/users"): ("role", A),
    ("POST", "/api/admin/users"): ("role", A),
    ("PATCH", "/api/admin/users/{user_id}"): ("role", A),
    ("GET", "/api/admin/tokens"): ("role", A),
    ("POST", "/api/admin/tokens"): ("role", A),
    ("DELETE", "/api/admin/tokens/{token_id}"): ("role", A),
    ("GET", "/api/admin/integrations"): ("role", A),
    ("POST", "/api/admin/integrations"): ("role", A),
    ("DELETE", "/api/admin/integrations/{integration_id}"): ("role", A),
    ("GET", "/api/audit"): ("role", A),
    ("GET", "/api/audit/export"): ("role", A),
    ("GET", "/api/incidents/{incident_id}/postmortem"): ("role", V),
    ("PUT", "/api/incidents/{incident_id}/postmortem/draft"): ("role", R),
    ("POST", "/api/incidents/{incident_id}/postmortem/submit"): ("role", R),
    ("GET", "/api/incidents/{incident_id}/postmortem.md"): ("role", V),
    ("GET", "/api/postmortems/due"): ("role", V),
    ("GET", "/api/action-items"): ("role", V),
    ("POST", "/api/incidents/{incident_id}/action-items/{index}/complete"): ("role", R),
    ("POST", "/api/incidents/{incident_id}/action-items"): ("role", R),
    ("PATCH", "/api/incidents/{incident_id}/action-items/{index}"): ("role", R),
    ("GET", "/api/metrics"): ("role", V),
    ("GET", "/metrics"): ("role", V),
    ("GET", "/incidents/{incident_id}/postmortem"): ("page", V),
    ("POST", "/incidents/{incident_id}/postmortem"): ("page", R),
    ("GET", "/postmortems"): ("page", V),
    ("POST", "/incidents/{incident_id}/action-items/{index}/complete"): ("page", R),
    ("POST", "/incidents/{incident_id}/action-items/{index}/edit"): ("page", R),
    ("POST", "/incidents/{incident_id}/action-items"): ("page", R),
    ("GET", "/dashboard"): ("page", V),
}

DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
"""Public on purpose: the API's shape is no secret (it is in the repository), the pages hold no
data, and people read them before they have a token. Swagger's Authorize button takes one."""

PATH_VALUES = {
    "incident_id": "2000000001", "run": "1", "step": "1", "runbook_id": "scale-up", "number": "999999",
    "document:path": "status.json", "window_id": "999999", "user_id": "nobody", "token_id": "wr_000000000000",
    "integration_id": "999999", "index": "1", "name": "nightly-backup", "delivery_id": "999999",
    "report_id": "999999",
}
PROBE = {"__probe__": True}
"""A body no route accepts (every request model forbids unknown fields)."""
BOGUS_SECRET = "wri_000000000000_" + "x" * 43

IDENTITIES = ["none", "viewer", "responder", "operator", "admin", "expired", "revoked", "integration"]


@dataclass
class Served:
    app: Any
    transport: httpx.ASGITransport
    engine: Engine
    tokens: dict[str, str]


@pytest.fixture
async def served(client: Client, engine: Engine, tmp_path: Path) -> AsyncIterator[Served]:
    settings = Settings(
        data_dir=tmp_path, policy=write_policy(tmp_path / "policy.yaml"), task_queue="no-worker",
        command_timeout_seconds=3, login_rate_burst=100, webhook_rate_burst=100,
    )
    app = create_app(settings, client=client, engine=engine)
    tokens = {role.value: token_for(engine, f"a-{role.value}", role) for role in Role}
    tokens["expired"] = expired_token(engine, "a-expired", Role.ADMIN)
    tokens["revoked"] = revoked_token(engine, "a-revoked", Role.ADMIN)
    tokens["integration"] = integration_secret(engine)
    async with app.router.lifespan_context(app):
        yield Served(app, httpx.ASGITransport(app=app), engine, tokens)


def test_every_route_declares_who_may_call_it(served: Served) -> None:
    """A route without a rule is a hole: each must carry exactly one access dependency."""
    for route in routes_of(served.app):
        markers = access_of(route)
        if getattr(route, "dependant", None) is None:
            assert route.path in DOCS, f"{route.path} is not an API route and not the documentation"
            continue
        assert len(markers) == 1, f"{sorted(route.methods)} {route.path} has {len(markers)} access rules: {markers}"


def test_the_table_names_every_route(served: Served) -> None:
    served_routes = {
        (method, route.path)
        for route in routes_of(served.app) if route.path not in DOCS
        for method in route.methods if method != "HEAD"
    }
    assert served_routes == set(RULES), (
        f"not in the table: {sorted(served_routes - set(RULES))}; "
        f"gone from the app: {sorted(set(RULES) - served_routes)}"
    )
    for route in routes_of(served.app):
        for method in getattr(route, "methods", set()) - {"HEAD"}:
            rule = RULES.get((method, route.path))
            if isinstance(rule, tuple) and rule[0] != "integration":
                (marker,) = access_of(route)
                assert marker.kind == "role" and marker.role == rule[1], f"{method} {route.path}: {marker}"


def _path(template: str, identity: str, tokens: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "token":
            return tokens["integration"] if identity == "integration" else BOGUS_SECRET
        return PATH_VALUES[name]

    return re.sub(r"\{([^}]+)\}", fill, template)


def expected(rule: Any, identity: str) -> str:
    """The answer's class: '401', '403', '303' (to the sign-in page) or 'in' (let in: anything else)."""
    if rule == "public":
        return "in"
    if rule in ("twilio", "login", "slack"):
        return "403"
    if rule == "integration":
        return "in" if identity == "integration" else "401"
    if rule[0] == "integration":
        return "401"  # the table's secret is an Alertmanager's: another source's route refuses it
    kind, role = rule
    if identity in ("none", "expired", "revoked", "integration"):
        return "303" if kind == "page" else "401"
    return "in" if Role(identity).at_least(role) else "403"


async def test_every_route_with_every_identity(served: Served) -> None:
    failures = []
    async with httpx.AsyncClient(transport=served.transport, base_url="http://warroom.test") as http:
        for (method, template), rule in RULES.items():
            for identity in IDENTITIES:
                token = served.tokens.get(identity)
                headers = bearer(token) if token else {}
                path = _path(template, identity, served.tokens)
                body = {} if method in ("GET", "DELETE") else {"json": PROBE}
                response = await http.request(method, path, headers=headers, **body)
                want, got = expected(rule, identity), response.status_code
                problem = None
                if got >= 500:
                    problem = "a server error"
                elif want == "in" and got in (401, 403, 303):
                    problem = "refused"
                elif want == "in" and method not in ("GET", "DELETE") and isinstance(rule, tuple) and rule[0] == "role":
                    problem = None if got == 422 else "not refused for its body (422)"
                elif want == "303":
                    if got != 303 or not response.headers["location"].startswith("/login"):
                        problem = "not sent to /login"
                elif want != "in" and str(got) != want:
                    problem = f"not {want}"
                if want == "401" and got == 401:
                    reason = response.json()["detail"]
                    if identity in ("expired", "revoked") and identity not in reason and rule != "integration" \
                            and not (isinstance(rule, tuple) and rule[0] == "integration"):
                        problem = f"401 without saying the token was {identity}: {reason}"
                    if response.headers.get("www-authenticate", "").split(" ")[0] != "Bearer":
                        problem = "401 without a Bearer challenge"
                if want == "403" and got == 403 and isinstance(rule, tuple):
                    said = response.text if rule[0] == "page" else response.json()["detail"]  # a page says it in HTML
                    if f"needs the {rule[1].value} role" not in said:
                        problem = f"403 without the reason: {response.text[:200]}"
                if problem:
                    failures.append(f"{method} {template} as {identity}: {got} ({problem}) {response.text[:120]}")
    assert not failures, "\n".join(failures)


async def test_a_user_token_cannot_deliver_alerts_and_a_secret_cannot_call_the_api(served: Served) -> None:
    async with client_as(served.transport, served.tokens["admin"]) as admin:
        alert = await admin.post("/api/webhooks/alertmanager", json=PROBE)
    assert alert.status_code == 401 and "user's API token cannot deliver alerts" in alert.json()["detail"]
    async with client_as(served.transport, served.tokens["integration"]) as integration:
        listing = await integration.get("/api/incidents")
    assert listing.status_code == 401 and "integration's secret, not an API token" in listing.json()["detail"]


# --- the caller is the actor ------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body"), [
    ("/api/incidents", {"title": "DNS slow", "severity": "SEV-2", "declared_by": "alice"}),
    ("/api/incidents/2000000001/acknowledge", {"person": "alice"}),
    ("/api/incidents/2000000001/escalate", {"person": "alice"}),
    ("/api/incidents/2000000001/status-updates", {"message": "Investigating.", "author": "alice"}),
    ("/api/incidents/2000000001/roles", {"role": "ic", "person": "bob", "by": "alice"}),
    ("/api/incidents/2000000001/severity", {"severity": "SEV-1", "by": "alice"}),
    ("/api/incidents/2000000001/resolve", {"summary": "Fixed.", "by": "alice"}),
    ("/api/incidents/2000000001/postmortem", {"summary": "x", "by": "alice"}),
    ("/api/incidents/2000000001/runbook-runs", {"runbook": "scale-up", "params": {"replicas": 3}, "actor": "alice"}),
    ("/api/incidents/2000000001/runbook-runs/1/abort", {"actor": "alice"}),
    ("/api/incidents/2000000001/runbook-runs/1/steps/1/confirm", {"actor": "alice"}),
    ("/api/incidents/2000000001/components", {"component": "dns", "state": "major_outage", "by": "alice"}),
    ("/api/maintenance", {"title": "x", "components": ["dns"], "starts_at": "2099-01-01T00:00:00Z",
                          "ends_at": "2099-01-01T01:00:00Z", "created_by": "alice"}),
])
async def test_nobody_acts_in_someone_elses_name(served: Served, path: str, body: dict[str, Any]) -> None:
    """bob (an operator) may do each of these, but not as alice: 403 with the reason."""
    async with client_as(served.transport, token_for(served.engine, "bob", Role.OPERATOR)) as bob:
        response = await bob.post(path, json=body)
    assert response.status_code == 403, response.text
    assert "you are bob" in response.json()["detail"] and "alice" in response.json()["detail"]


# --- credentials change at once -----------------------------------------------------------------


async def test_role_changes_disabling_and_revocation_take_effect_on_the_next_request(served: Served) -> None:
    admin = client_as(served.transport, served.tokens["admin"])
    carol_token = token_for(served.engine, "carol", Role.VIEWER)
    carol = client_as(served.transport, carol_token)
    async with admin, carol:
        assert (await carol.post("/api/maintenance", json=PROBE)).status_code == 403
        promoted = await admin.patch("/api/admin/users/carol", json={"role": "operator"})
        assert promoted.status_code == 200 and promoted.json()["role"] == "operator"
        assert (await carol.post("/api/maintenance", json=PROBE)).status_code == 422
        assert (await carol.get("/api/me")).json()["role"] == "operator"

        read_only = await admin.post("/api/admin/tokens", json={"user": "carol", "name": "dashboard", "role": "viewer"})
        assert read_only.status_code == 201
        async with client_as(served.transport, read_only.json()["token"]) as dashboard:
            assert (await dashboard.get("/api/incidents")).status_code == 200
            assert (await dashboard.post("/api/maintenance", json=PROBE)).status_code == 403
        too_much = await admin.post("/api/admin/tokens", json={"user": "a-viewer", "name": "x", "role": "admin"})
        assert too_much.status_code == 422 and "cannot have more rights than its user" in too_much.json()["detail"]

        disabled = await admin.patch("/api/admin/users/carol", json={"disabled": True})
        assert disabled.status_code == 200
        refused = await carol.get("/api/incidents")
        assert refused.status_code == 401 and "carol is disabled" in refused.json()["detail"]
        await admin.patch("/api/admin/users/carol", json={"disabled": False})
        assert (await carol.get("/api/incidents")).status_code == 200

        token_id = "wr_" + carol_token.split("_")[1]
        listed = (await admin.get("/api/admin/tokens", params={"user": "carol"})).json()
        assert {t["id"] for t in listed} >= {token_id}
        assert all("token" not in t for t in listed), "a token's secret is never listed"
        revoked = await admin.delete(f"/api/admin/tokens/{token_id}")
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        gone = await carol.get("/api/incidents")
        assert gone.status_code == 401 and f"API token {token_id} was revoked" in gone.json()["detail"]


async def test_the_last_admin_cannot_be_demoted_or_disabled(served: Served) -> None:
    async with client_as(served.transport, served.tokens["admin"]) as admin:
        for other in ("a-expired", "a-revoked"):  # the other admins of the fixture step down first
            assert (await admin.patch(f"/api/admin/users/{other}", json={"role": "viewer"})).status_code == 200
        for change in ({"role": "operator"}, {"disabled": True}):
            refused = await admin.patch("/api/admin/users/a-admin", json=change)
            assert refused.status_code == 409 and "last active admin" in refused.json()["detail"]
        made = await admin.post("/api/admin/users", json={"id": "dana", "role": "admin"})
        assert made.status_code == 201 and made.json()["can_sign_in"] is False
        assert (await admin.patch("/api/admin/users/a-admin", json={"role": "operator"})).status_code == 200
        after = await admin.post("/api/admin/users", json={"id": "eve", "role": "viewer"})
        assert after.status_code == 403, "stepping down takes effect at once"
    async with client_as(served.transport, token_for(served.engine, "dana")) as dana:
        again = await dana.post("/api/admin/users", json={"id": "dana", "role": "viewer"})
        assert again.status_code == 409 and "already exists" in again.json()["detail"]


# --- web sign-in, sessions and CSRF ----------------------------------------------------------------------

PASSWORD = "correct horse battery"


async def _sign_in(http: httpx.AsyncClient, user: str, password: str = PASSWORD, next_path: str = "/account"
                   ) -> httpx.Response:
    form = await http.get("/login", params={"next": next_path})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf, form.text
    return await http.post("/login", data={"username": user, "password": password, "csrf_token": csrf.group(1),
                                           "next": next_path})


def _csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def test_sign_in_session_cookie_csrf_and_sign_out(served: Served) -> None:
    ensure_user(served.engine, "erin", Role.RESPONDER, password=PASSWORD)
    async with httpx.AsyncClient(transport=served.transport, base_url="http://warroom.test") as browser:
        to_login = await browser.get("/account")
        assert to_login.status_code == 303 and to_login.headers["location"] == "/login?next=/account"

        wrong = await _sign_in(browser, "erin", "not the password at all")
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        signed_in = await _sign_in(browser, "erin", next_path="https://evil.example/")
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/console"
        cookie = signed_in.headers["set-cookie"]
        assert "warroom_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http here; see the https test below

        account = await browser.get("/account")
        assert account.status_code == 200 and "erin" in account.text and "responder" in account.text
        csrf = _csrf_of(account.text)
        assert (await browser.get("/api/me")).json()["via"] == "session"

        # A form POST without the session's CSRF token is refused and changes nothing.
        forged = await browser.post("/account/password", data={
            "current_password": PASSWORD, "new_password": "a brand new password",
            "confirm_password": "a brand new password"})
        assert forged.status_code == 403
        # The same for the JSON API with the session cookie: the token goes in X-CSRF-Token.
        no_header = await browser.post("/api/incidents", json=PROBE)
        assert no_header.status_code == 403 and "CSRF" in no_header.json()["detail"]
        with_header = await browser.post("/api/incidents", json=PROBE, headers={"X-CSRF-Token": csrf})
        assert with_header.status_code == 422

        changed = await browser.post("/account/password", data={
            "csrf_token": csrf, "current_password": PASSWORD, "new_password": "a brand new password",
            "confirm_password": "a brand new password"})
        assert changed.status_code == 200 and "Password changed" in changed.text

        assert (await browser.post("/logout", data={})).status_code == 403, "sign-out needs the CSRF token too"
        out = await browser.post("/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/login"
    # The old cookie is dead even if a browser kept it.
    old = signed_in.cookies["warroom_session"]
    async with httpx.AsyncClient(transport=served.transport, base_url="http://warroom.test",
                                 cookies={"warroom_session": old}) as replay:
        refused = await replay.get("/api/me")
        assert refused.status_code == 401 and "has ended" in refused.json()["detail"]


async def test_sign_in_form_needs_its_csrf_cookie(served: Served) -> None:
    ensure_user(served.engine, "erin", Role.RESPONDER, password=PASSWORD)
    async with httpx.AsyncClient(transport=served.transport, base_url="http://warroom.test") as http:
        response = await http.post("/login", data={"username": "erin", "password": PASSWORD, "csrf_token": "guess"})
    assert response.status_code == 403 and "warroom_session" not in response.headers.get("set-cookie", "")


async def test_sign_in_is_rate_limited_per_address(client: Client, engine: Engine, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, policy=write_policy(tmp_path / "policy.yaml"), login_rate_burst=3,
                        login_rate_per_minute=1, webhook_rate_burst=2, webhook_rate_per_minute=1)
    app = create_app(settings, client=client, engine=engine)
    ensure_user(engine, "erin", Role.RESPONDER, password=PASSWORD)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://warroom.test") as http:
            answers = [(await _sign_in(http, "erin", "guess number %d" % i)).status_code for i in range(3)]
            assert answers == [401, 401, 401]
            blocked = await _sign_in(http, "erin")  # even the right password waits
            assert blocked.status_code == 429 and "too many" in blocked.text.lower(), blocked.text
            assert "warroom_session" not in blocked.headers.get("set-cookie", "")
            # Alert deliveries have a bucket of their own.
            secret = integration_secret(engine)
            codes = [(await http.post(f"/api/webhooks/alertmanager/{secret}", json=PROBE)).status_code
                     for _ in range(3)]
            assert codes == [422, 422, 429]
            flood = await http.post("/api/webhooks/alertmanager", json=PROBE)
            assert flood.status_code == 429 and int(flood.headers["retry-after"]) >= 1


async def test_session_cookie_is_secure_behind_https(client: Client, engine: Engine, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, policy=write_policy(tmp_path / "policy.yaml"),
                        public_base_url="https://warroom.example.com")
    app = create_app(settings, client=client, engine=engine)
    ensure_user(engine, "erin", Role.RESPONDER, password=PASSWORD)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://warroom.test") as http:
            signed_in = await _sign_in(http, "erin")
            assert signed_in.status_code == 303
            assert "Secure" in signed_in.headers["set-cookie"]
            assert signed_in.headers["strict-transport-security"].startswith("max-age=")


# --- security headers ------------------------------------------------------------------------------


async def test_pages_carry_security_headers_and_a_csp_that_allows_only_their_own_scripts(served: Served) -> None:
    async with httpx.AsyncClient(transport=served.transport, base_url="http://warroom.test") as http:
        page = await http.get("/status")
        api = await http.get("/api/v2/status.json")
        login = await http.get("/login")
    for response in (page, api, login):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "strict-transport-security" not in response.headers  # plain http
    csp = page.headers["content-security-policy"]
    hashes = script_hashes(page.content)
    assert hashes, "the status page has its local-time script"
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert all(h in script_src for h in hashes) and "unsafe-inline" not in script_src
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


async def test_the_documentation_is_public_and_describes_both_credentials(served: Served) -> None:
    async with httpx.AsyncClient(transport=served.transport, base_url="http://warroom.test") as http:
        schema = await http.get("/openapi.json")
        docs = await http.get("/docs")
    assert schema.status_code == 200 and docs.status_code == 200
    schemes = schema.json()["components"]["securitySchemes"]
    assert schemes["token"]["scheme"] == "bearer" and schemes["session"]["in"] == "cookie"
    ack = schema.json()["paths"]["/api/incidents/{incident_id}/acknowledge"]["post"]
    assert {"token": []} in ack["security"]
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
