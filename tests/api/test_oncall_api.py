"""GET /api/oncall (now and next, any instant), the page preview, and reading and
changing the configuration over REST: validated, versioned, guarded against lost edits.

These routes need no Temporal: the app runs with a lazy client that is never used."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine

from tests.access import client_as, token_for
from warroom.api.app import create_app
from warroom.models.access import Role
from warroom.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "oncall.yaml"
WEDNESDAY_3AM = datetime(2026, 12, 9, 3, 0, tzinfo=UTC)


@pytest.fixture
async def http(engine: Engine, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    policy = tmp_path / "policy.yaml"
    shutil.copy(EXAMPLE, policy)
    settings = Settings(_env_file=None, data_dir=tmp_path, policy=policy, temporal_port=1)  # type: ignore[call-arg]
    app = create_app(settings, engine=engine, clock=lambda: WEDNESDAY_3AM)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        # The app's clock is a week ahead: the admin's token must outlive that.
        token = token_for(engine, "dana", Role.ADMIN, expires_in=timedelta(days=60))
        async with client_as(transport, token) as client:
            yield client


async def test_who_is_on_call_now_and_next_per_schedule(http: httpx.AsyncClient) -> None:
    resp = await http.get("/api/oncall")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["at"] == "2026-12-09T03:00:00Z" and body["version"] == 1
    primary = next(s for s in body["schedules"] if s["schedule"] == "platform-primary")
    assert primary["now"]["person"] == "bob" and primary["now"]["start"] == "2026-12-08T17:30:00Z"
    assert (primary["next"]["person"], primary["next"]["start"]) == ("alice", "2026-12-09T09:00:00Z")
    teams = {t["team"]: t for t in body["teams"]}
    assert teams["platform"]["in_business_hours"] is False
    assert teams["platform"]["next_business_hours"] == "2026-12-09T09:00:00Z"
    assert teams["platform"]["business_hours"] == "Mon-Fri 09:00-17:30 Europe/London"


async def test_any_instant_can_be_asked_and_an_instant_without_a_zone_is_refused(http: httpx.AsyncClient) -> None:
    resp = await http.get("/api/oncall", params={"at": "2026-12-10T03:00:00+00:00"})
    primary = next(s for s in resp.json()["schedules"] if s["schedule"] == "platform-primary")
    assert (primary["now"]["person"], primary["now"]["source"]) == ("carol", "override")
    naive = await http.get("/api/oncall", params={"at": "2026-12-10T03:00:00"})
    assert naive.status_code == 422 and "give a time zone offset" in naive.json()["detail"]
    garbage = await http.get("/api/oncall", params={"at": "yesterday"})
    assert garbage.status_code == 422
    for far in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "1969-07-20T20:17:00Z"):
        resp = await http.get("/api/oncall", params={"at": far})
        assert resp.status_code == 422, (far, resp.text)


async def test_preview_says_who_a_sev1_at_3am_and_a_sev3_at_3pm_would_page(http: httpx.AsyncClient) -> None:
    night = (await http.get("/api/oncall/preview", params={"severity": "SEV-1"})).json()
    assert (night["people"], night["action"], night["methods"]) == (["bob"], "page", ["voice", "sms"])
    assert night["targets"] == "schedule platform-primary → bob (on call)"
    afternoon = (await http.get("/api/oncall/preview", params={"severity": "SEV-3", "at": "2026-12-09T15:00:00Z"})).json()
    assert (afternoon["people"], afternoon["methods"]) == (["alice"], ["email", "sms"])
    deferred = (await http.get("/api/oncall/preview", params={"severity": "sev3"})).json()
    assert (deferred["action"], deferred["until"]) == ("defer", "2026-12-09T09:00:00Z")
    mail = (await http.get("/api/oncall/preview", params={"severity": "SEV-2", "component": "email"})).json()
    assert (mail["escalation"], mail["team"], mail["people"]) == ("mail", "mail", ["dan"])
    bad = await http.get("/api/oncall/preview", params={"severity": "SEV-9"})
    assert bad.status_code == 422 and "unknown severity" in bad.json()["detail"]


async def test_the_configuration_reads_back_as_json_and_yaml(http: httpx.AsyncClient) -> None:
    body = (await http.get("/api/oncall/config")).json()
    assert (body["version"], body["source"], body["created_by"]) == (1, "file", "policy file")
    assert body["config"]["schedules"]["platform-primary"]["layers"][0]["start"] == "2026-11-30"
    text = await http.get("/api/oncall/config", params={"format": "yaml"})
    assert text.headers["content-type"].startswith("application/yaml") and text.headers["etag"] == '"1"'
    assert yaml.safe_load(text.text) == body["config"]


async def test_put_replaces_it_and_the_next_answer_uses_it(http: httpx.AsyncClient) -> None:
    doc = json.loads(json.dumps(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")), default=str))
    doc["schedules"]["platform-primary"]["layers"][0]["participants"] = ["alice", "carol"]
    resp = await http.put("/api/oncall/config", json=doc, headers={"If-Match": '"1"'})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["version"], resp.json()["created_by"], resp.json()["changed"]) == (2, "dana", True)
    night = (await http.get("/api/oncall/preview", params={"severity": "SEV-1"})).json()
    assert night["people"] == ["carol"]  # week 2 of [alice, carol]
    # The same document again stores nothing new.
    same = await http.put("/api/oncall/config", json=doc)
    assert (same.json()["version"], same.json()["changed"]) == (2, False)


async def test_put_accepts_yaml_and_refuses_a_stale_version(http: httpx.AsyncClient) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("ack_timeout: 10m ", "ack_timeout: 7m ")
    resp = await http.put("/api/oncall/config", content=text, headers={"content-type": "application/yaml"})
    assert resp.status_code == 200 and resp.json()["config"]["ack_timeout"] == "7m"
    stale = await http.put("/api/oncall/config", content=text, headers={"content-type": "application/yaml",
                                                                        "If-Match": "1"})
    assert stale.status_code == 409 and "at version 2, not 1" in stale.json()["detail"]


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        ({"people": {}}, "application/json", "escalation: missing; give the default escalation policy"),
        (None, "application/json", "the body must be a mapping"),
        ("people: [unclosed", "application/yaml", "the body is not valid YAML"),
        ("{", "application/json", "the body is not valid JSON"),
        # An alias bomb (here a small one: each level ten times the one before) and a merge key.
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
         "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n", "application/yaml",
         "the body has an anchor (&a) at line 1: YAML anchors and aliases are not accepted"),
        ("base: &base {ack_timeout: 7m}\nother:\n  <<: *base\n", "application/yaml", "anchors and aliases"),
        ("x: " + "[" * 100_000, "application/yaml", "the body nests more than 64 levels deep"),
        ("[" * 100_000 + "]" * 100_000, "application/json", "the body nests more than 64 levels deep"),
        ('{"a": ' * 70 + "1" + "}" * 70, "application/json", "the body nests more than 64 levels deep"),
    ],
)
async def test_a_bad_put_is_a_422_with_the_reason_and_changes_nothing(
    http: httpx.AsyncClient, body: Any, content_type: str, detail: str
) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    resp = await http.put("/api/oncall/config", content=content, headers={"content-type": content_type})
    assert resp.status_code == 422 and detail in resp.json()["detail"]
    assert (await http.get("/api/oncall/config")).json()["version"] == 1


async def test_patch_changes_part_of_it_and_unknown_names_are_refused(http: httpx.AsyncClient) -> None:
    unknown = await http.patch("/api/oncall/config", json={"teams": {"mail": {"members": ["dan", "zoe"]}}})
    assert unknown.status_code == 422
    assert "teams.mail.members.1: unknown person 'zoe'" in unknown.json()["detail"]
    override = {"person": "alice", "start": "2026-12-09T02:00:00Z", "end": "2026-12-09T06:00:00Z"}
    overrides = [override, {"person": "carol", "start": "2026-12-09T20:00:00Z", "end": "2026-12-10T12:00:00Z"}]
    patch = {"schedules": {"platform-primary": {"overrides": overrides}}, "engineering_lead": None}
    resp = await http.patch("/api/oncall/config", json=patch)
    assert resp.status_code == 200, resp.text
    assert "engineering_lead" not in resp.json()["config"]
    assert resp.json()["config"]["schedules"]["platform-primary"]["layers"][0]["participants"] == ["alice", "bob", "carol"]
    night = (await http.get("/api/oncall/preview", params={"severity": "SEV-1"})).json()
    assert (night["people"], night["targets"]) == (["alice"], "schedule platform-primary → alice (override)")
    overlapping = await http.patch("/api/oncall/config", json={"schedules": {"platform-primary": {
        "overrides": [override, {"person": "bob", "start": "2026-12-09T05:00:00Z", "end": "2026-12-09T07:00:00Z"}]
    }}})
    assert overlapping.status_code == 422 and "overrides.1 (bob) overlaps overrides.0 (alice)" in overlapping.json()["detail"]


async def test_patching_a_schedule_that_does_not_exist_says_so(http: httpx.AsyncClient) -> None:
    resp = await http.patch("/api/oncall/config", json={"schedules": {"platform-secondary": {"overrides": []}}})
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert detail.startswith("schedules.platform-secondary: there is no schedule 'platform-secondary' in the "
                             "configuration in force (version 1)"), detail
    assert "schedules.platform-secondary.layers" in detail  # what a new one lacks, still named
    # an existing schedule is patched as before, and other refusals keep their own words
    unknown = await http.patch("/api/oncall/config", json={"teams": {"platform": {"members": ["zoe"]}}})
    assert unknown.status_code == 422 and "teams.platform.members.0: unknown person" in unknown.json()["detail"]
    assert "there is no" not in unknown.json()["detail"]


async def test_the_coming_shifts_are_listed_by_number_or_window_with_local_times(http: httpx.AsyncClient) -> None:
    body = (await http.get("/api/oncall")).json()
    primary = next(s for s in body["schedules"] if s["schedule"] == "platform-primary")
    assert len(primary["coming"]) == 5 and primary["coming"][0] == primary["next"]  # a few by default
    assert primary["now"]["person_time_zone"] == "Europe/London" and primary["now"]["layer"] == 1
    resp = await http.get("/api/oncall", params={"shifts": 3})
    primary = next(s for s in resp.json()["schedules"] if s["schedule"] == "platform-primary")
    assert [(s["person"], s["source"], s["layer"], s["start"], s["start_local"]) for s in primary["coming"]] == [
        ("alice", "rotation", 2, "2026-12-09T09:00:00Z", "2026-12-09T09:00:00Z"),
        ("bob", "rotation", 1, "2026-12-09T17:30:00Z", "2026-12-09T17:30:00Z"),
        ("carol", "override", None, "2026-12-09T20:00:00Z", "2026-12-09T20:00:00Z"),
    ]
    assert primary["more_coming"] is True
    mail = next(s for s in resp.json()["schedules"] if s["schedule"] == "mail-primary")
    assert (mail["now"]["start"], mail["now"]["start_local"]) == ("2026-12-08T13:00:00Z", "2026-12-08T08:00:00-05:00")
    assert mail["now"]["person_time_zone"] == "America/New_York"

    window = await http.get("/api/oncall", params={"until": "2026-12-10T00:00:00Z"})
    primary = next(s for s in window.json()["schedules"] if s["schedule"] == "platform-primary")
    assert [s["person"] for s in primary["coming"]] == ["alice", "bob", "carol"] and not primary["more_coming"]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"shifts": "-1"}, "greater than or equal to 0"),
        ({"shifts": "101"}, "less than or equal to 100"),
        ({"until": "2026-12-09T02:00:00Z"}, "until: give an instant after at"),
        ({"until": "2027-06-01T00:00:00Z"}, "until: at most 92 days after at"),
        ({"until": "2026-12-10T00:00:00"}, "until: give a time zone offset"),
    ],
)
async def test_a_bad_shift_count_or_window_is_a_422_with_the_reason(
    http: httpx.AsyncClient, params: dict[str, str], detail: str
) -> None:
    resp = await http.get("/api/oncall", params=params)
    assert resp.status_code == 422 and detail in json.dumps(resp.json()["detail"]), resp.text


async def audit_of(http: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    resp = await http.get("/api/audit", params={"limit": 100, **params})
    assert resp.status_code == 200, resp.text
    return list(reversed(resp.json()))  # oldest first


async def test_the_start_up_load_of_the_policy_file_is_in_the_audit_log(http: httpx.AsyncClient) -> None:
    [loaded] = await audit_of(http, actor="policy-file")
    assert (loaded["action"], loaded["credential"], loaded["method"], loaded["target"]) == (
        "load_policy_file", "policy file", "START", "version=1")
    assert loaded["path"].endswith("policy.yaml") and loaded["user_agent"].startswith("warroom api on ")
    assert loaded["reason"] == (
        "version 1: first version: people alice, bob, carol, dan, erin, fay; teams mail, platform; "
        "schedules mail-primary, platform-primary; escalation_policies default, mail"
    )
    assert json.loads(loaded["detail"])["changes"]["schedules"] == {"added": ["mail-primary", "platform-primary"]}
    assert "+1500555" not in json.dumps(loaded)


async def test_a_change_over_rest_is_audited_with_who_what_and_from_where_but_no_contact_details(
    http: httpx.AsyncClient,
) -> None:
    doc = json.loads(json.dumps(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")), default=str))
    doc["schedules"]["platform-primary"]["layers"][0]["participants"] = ["alice", "carol"]
    doc["people"]["dora"] = {"name": "Dora Kim", "sms": "+15005550099", "email": "dora@example.com"}
    doc["people"]["bob"]["sms"] = "+15005550098"
    del doc["people"]["fay"]
    doc["teams"]["mail"]["members"] = ["dan"]
    doc["schedules"]["mail-primary"]["layers"][0]["participants"] = ["dan", "dora"]
    doc["escalation_policies"]["mail"]["levels"][0]["notify"] = ["schedule:mail-primary", "dora"]
    doc["ack_timeout"] = "7m"
    put = await http.put("/api/oncall/config", json=doc, headers={"If-Match": "1", "User-Agent": "ops-laptop/1.0"})
    assert put.status_code == 200, put.text
    patch = await http.patch("/api/oncall/config", json={"engineering_lead": None})
    assert patch.status_code == 200, patch.text
    again = await http.patch("/api/oncall/config", json={"engineering_lead": None})
    refused = await http.put("/api/oncall/config", json={**doc, "people": {**doc["people"], "eve": {"name": "Eve"}}})
    assert (again.json()["changed"], refused.status_code) == (False, 422)

    replaced, patched, unchanged, bad = await audit_of(http, actor="dana")
    assert (replaced["action"], replaced["accepted"], replaced["role"]) == ("replace_config", True, "admin")
    assert (replaced["client_ip"], replaced["user_agent"]) == ("127.0.0.1", "ops-laptop/1.0")
    assert replaced["at"].startswith("2026-12-09T03:00:00")
    assert replaced["reason"] == (
        "replaced as version 2: ack_timeout: 10m -> 7m; escalation_policies changed: mail (levels); "
        "people added: dora; people removed: fay; people changed: bob (sms); "
        "schedules changed: mail-primary (layers), platform-primary (layers); teams changed: mail (members)"
    )
    assert json.loads(replaced["detail"]) == {"version": 2, "previous": 1, "changes": {
        "ack_timeout": {"from": "10m", "to": "7m"},
        "escalation_policies": {"changed": {"mail": ["levels"]}},
        "people": {"added": ["dora"], "removed": ["fay"], "changed": {"bob": ["sms"]}},
        "schedules": {"changed": {"mail-primary": ["layers"], "platform-primary": ["layers"]}},
        "teams": {"changed": {"mail": ["members"]}},
    }}
    assert patched["reason"] == "patched as version 3: engineering_lead: erin -> (none)"
    assert unchanged["reason"] == "nothing changed: version 3 already says this" and unchanged["accepted"]
    assert not bad["accepted"] and "people.eve: no contact method" in bad["reason"]
    assert bad["detail"].endswith("bytes of application/json)")
    everything = json.dumps(await audit_of(http))
    for contact in ("+15005550099", "+15005550098", "dora@example.com", "+15005550006"):
        assert contact not in everything
