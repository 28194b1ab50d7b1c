"""On-call configuration, routing and paging rules: pure decisions at explicit instants.

The example week (examples/oncall.yaml) answers the issue's "done when": the right
person is paged for a SEV-1 at 03:00 and a SEV-3 at 15:00 on a weekday.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from warroom.models import lifecycle, routing
from warroom.models.paging import quiet_notice_method
from warroom.models.oncall import Window
from warroom.models.policy import (
    DEFAULT_POLICY_PATH,
    ContactMethod,
    Person,
    Policy,
    PolicyError,
    Team,
    load_policy,
    parse_policy,
)
from warroom.models.severity import Severity

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "oncall.yaml"
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def example_data() -> dict[str, Any]:
    return dict(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def week() -> Policy:
    return load_policy(EXAMPLE)


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


# --- the example week: who is paged, how ---------------------------------------------------------

# Week of Monday 7 December 2026: bob holds the weekly primary, the weekday desk layer
# is alice on Mon/Wed/Fri and carol on Tue/Thu, and carol covers bob Wed 20:00 - Thu 12:00.
@pytest.mark.parametrize(
    ("severity", "at", "person", "action", "methods"),
    [
        # The two cases, on Wednesday 9 December.
        (Severity.SEV1, london(2026, 12, 9, 3, 0), "bob", "page", ["voice", "sms"]),
        (Severity.SEV3, london(2026, 12, 9, 15, 0), "alice", "page", ["email", "sms"]),
        # The same hours on Thursday: carol's override at 03:00, her desk day at 15:00.
        (Severity.SEV1, london(2026, 12, 10, 3, 0), "carol", "page", ["voice", "sms"]),
        (Severity.SEV3, london(2026, 12, 10, 15, 0), "carol", "page", ["email", "sms"]),
        # SEV-2 texts at any hour; SEV-3 at night waits; SEV-4 never pages.
        (Severity.SEV2, london(2026, 12, 9, 23, 30), "carol", "page", ["sms"]),
        (Severity.SEV3, london(2026, 12, 9, 22, 0), "carol", "defer", []),
        (Severity.SEV4, london(2026, 12, 9, 15, 0), "alice", "none", []),
        # Saturday afternoon: no desk layer, bob's week.
        (Severity.SEV1, london(2026, 12, 12, 15, 0), "bob", "page", ["voice", "sms"]),
        # Monday 14 December 09:30: the weekly hand-off is at 10:00, so still bob underneath,
        # but the desk (carol) is on top; at 17:45 the desk is closed and carol's week has begun.
        (Severity.SEV1, london(2026, 12, 14, 9, 30), "carol", "page", ["voice", "sms"]),
        (Severity.SEV1, london(2026, 12, 14, 17, 45), "carol", "page", ["voice", "sms"]),
        (Severity.SEV1, london(2026, 12, 14, 7, 59), "bob", "page", ["voice", "sms"]),
    ],
)
def test_the_example_week_pages_the_right_person_the_right_way(
    week: Policy, severity: Severity, at: datetime, person: str, action: str, methods: list[str]
) -> None:
    first = routing.plan_first_page(week, severity, at)
    assert first.route.escalation == "default" and first.route.team == "platform"
    assert first.resolution.people == [person]
    assert first.resolution.decision.action == action
    assert [m.value for m in first.resolution.decision.methods] == methods


def test_a_sev3_at_night_waits_for_nine_the_next_weekday_and_friday_night_for_monday(week: Policy) -> None:
    wednesday_night = routing.plan_first_page(week, Severity.SEV3, london(2026, 12, 9, 22, 0))
    assert wednesday_night.resolution.decision.until == london(2026, 12, 10, 9, 0)
    assert wednesday_night.resolution.decision.until_text == "Thu 10 Dec 09:00 Europe/London"
    friday_night = routing.plan_first_page(week, Severity.SEV3, london(2026, 12, 11, 17, 30))
    assert friday_night.resolution.decision.until == london(2026, 12, 14, 9, 0)


def test_the_timeline_line_says_which_schedule_meant_whom(week: Policy) -> None:
    first = routing.plan_first_page(week, Severity.SEV1, london(2026, 12, 10, 3, 0))
    assert first.resolution.describe() == "schedule platform-primary → carol (override)"
    level2 = routing.resolve_level(
        week, "default", 1, [], Severity.SEV1, "platform", london(2026, 12, 10, 3, 0)
    )
    assert level2.describe() == "team platform → alice, bob, carol"
    assert level2.via("bob") == "team:platform"


def test_email_incidents_and_mail_alerts_route_to_the_mail_team(week: Policy) -> None:
    by_component = routing.plan_first_page(week, Severity.SEV2, london(2026, 12, 9, 15), components=["Email"])
    assert (by_component.route.escalation, by_component.route.team, by_component.route.rule) == (
        "mail", "mail", "rule 'mail'"
    )
    assert by_component.resolution.people == ["fay"]  # Wednesday is fay's day in New York
    alert = routing.route(week, Severity.SEV2, ["dns"], "alertmanager", [{"team": "web"}, {"team": "mail"}])
    assert alert.rule == "rule 'mail-alerts'"
    assert routing.route(week, Severity.SEV2, ["dns"], "api", [{"team": "mail"}]).rule == "default route"


def test_who_is_on_call_now_and_next_per_schedule(week: Policy) -> None:
    overview = {s.schedule: s for s in routing.on_call_overview(week, london(2026, 12, 9, 15, 0))}
    primary = overview["platform-primary"]
    assert primary.now is not None and primary.next is not None
    assert (primary.now.person, primary.now.start, primary.now.end) == (
        "alice", london(2026, 12, 9, 9, 0), london(2026, 12, 9, 17, 30)
    )
    assert (primary.next.person, primary.next.start, primary.next.end) == (
        "bob", london(2026, 12, 9, 17, 30), london(2026, 12, 9, 20, 0)
    )
    mail = overview["mail-primary"]
    assert mail.now is not None and mail.now.person == "fay"
    assert mail.now.start == datetime(2026, 12, 9, 8, 0, tzinfo=NEW_YORK)


# --- backward compatibility ------------------------------------------------------------------------


def test_the_shipped_flat_policy_still_loads_and_pages_alice_then_bob() -> None:
    policy = load_policy(DEFAULT_POLICY_PATH)
    plan = lifecycle.escalation_plan(policy)
    assert [s.people for s in plan] == [("alice",), ("bob",), ("alice",), ("bob",)]
    assert all(s.ack_timeout == timedelta(minutes=10) for s in plan)
    first = routing.plan_first_page(policy, Severity.SEV2, datetime(2026, 12, 9, 3, tzinfo=UTC))
    assert first.route == routing.RouteChoice()
    assert (first.resolution.people, first.resolution.describe()) == (["alice"], "alice")
    assert [m.value for m in first.resolution.decision.methods] == ["sms"]
    assert not lifecycle.pages_for(policy, Severity.SEV4) and lifecycle.pages_for(policy, Severity.SEV3)


def test_the_default_escalation_may_be_given_under_escalation_policies() -> None:
    data = example_data()
    assert "escalation" not in data
    policy = parse_policy(data)
    assert policy.escalation == policy.escalation_policies["default"]
    assert policy.level_timeout(1) == timedelta(minutes=15)


# --- validation: clear errors that name the key ------------------------------------------------------


def edited(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(example_data())
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["teams"]["platform"]["members"].append("zoe"),
         "teams.platform.members.3: unknown person 'zoe'"),
        (lambda d: d["schedules"]["platform-primary"]["layers"][0]["participants"].append("zoe"),
         "schedules.platform-primary.layers.0.participants.3: unknown person 'zoe'"),
        (lambda d: d["schedules"]["mail-primary"]["layers"][0].update(participants=[]),
         "schedules.mail-primary.layers.0.participants: List should have at least 1 item"),
        (lambda d: d["escalation_policies"]["default"]["levels"][0].update(notify=["schedule:platfrom-primary"]),
         "escalation_policies.default.levels.0.notify.0: unknown schedule 'platfrom-primary'"),
        (lambda d: d["escalation_policies"]["mail"]["levels"][1].update(notify=["team:post"]),
         "escalation_policies.mail.levels.1.notify.0: unknown team 'post'"),
        (lambda d: d["teams"].update(empty={"members": []}) or d["escalation_policies"]["mail"].update(
            fallback=["team:empty"]), "escalation_policies.mail.fallback.0: team 'empty' has no members"),
        (lambda d: d["routes"][0].update(escalation="post"), "routes.0.escalation: unknown escalation policy 'post'"),
        (lambda d: d["default_route"].update(team="post"), "default_route.team: unknown team 'post'"),
        (lambda d: d["teams"]["mail"].update(time_zone="America/Gotham"),
         "teams.mail.time_zone: unknown time zone 'America/Gotham'"),
        (lambda d: d["people"]["dan"].update(time_zone="EST5"), "people.dan.time_zone: unknown time zone"),
        (lambda d: d["schedules"]["platform-primary"]["overrides"].append(
            {"person": "alice", "start": "2026-12-10T11:00:00Z", "end": "2026-12-10T13:00:00Z"}),
         "overrides.1 (alice) overlaps overrides.0 (carol)"),
        (lambda d: d["schedules"]["mail-primary"]["layers"][0].update(handoff=480),
         'layers.0.handoff: write a time of day in quotes, e.g. "09:00"'),
        (lambda d: d["paging_rules"].append({"severities": ["SEV-2"], "action": "defer"}),
         "paging_rules.5: action 'defer' waits for business hours"),
        (lambda d: d["paging_rules"].append({"severities": ["SEV-2"], "action": "none", "methods": ["sms"]}),
         "methods only apply to action 'page'"),
        (lambda d: d["people"].update({"schedule:x": {"name": "X", "sms": "+15005550099"}}),
         "people.schedule:x: a person's id cannot contain ':'"),
        (lambda d: d.pop("escalation_policies"), "escalation: missing; give the default escalation policy"),
        (lambda d: d["teams"]["platform"]["business_hours"][0].update(end="09:00"),
         "teams.platform.business_hours.0: a window's start and end must differ"),
    ],
)
def test_a_bad_configuration_is_refused_naming_the_key(change: Any, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(edited(change), "oncall.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("oncall.yaml: ")


def test_overlapping_layers_are_what_layers_are_for() -> None:
    # The desk layer overlaps the weekly layer every weekday; that is valid.
    policy = parse_policy(example_data())
    assert len(policy.schedules["platform-primary"].layers) == 2


# --- routing and paging rules, table-style ---------------------------------------------------------


def rules_policy(**extra: Any) -> Policy:
    data: dict[str, Any] = {
        "people": {"ann": {"name": "Ann", "sms": "+15005550101", "email": "ann@example.com"},
                   "ben": {"name": "Ben", "sms": "+15005550102"}},
        "teams": {"ops": {"members": ["ann", "ben"], "time_zone": "America/New_York",
                          "business_hours": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                                              "start": "09:00", "end": "17:00"}]}},
        "escalation_policies": {"default": {"levels": [{"notify": ["ann"]}]},
                                "db": {"levels": [{"notify": ["team:ops"]}]}},
        "routes": [
            {"name": "db-critical", "match": {"components": ["database"], "severities": ["SEV-1", "SEV-2"]},
             "escalation": "db", "team": "ops"},
            {"name": "grafana", "match": {"sources": ["grafana"]}, "escalation": "db"},
            {"name": "labelled", "match": {"labels": {"service": "billing", "env": "prod"}}, "team": "ops"},
        ],
        "default_route": {"escalation": "default", "team": "ops"},
        "paging_rules": [
            {"severities": ["SEV-1"], "methods": ["voice", "sms"]},
            {"severities": ["SEV-3"], "when": "outside_business_hours", "action": "defer"},
            {"severities": ["SEV-2"], "when": "outside_business_hours", "methods": ["email"]},
        ],
    }
    data.update(extra)
    return parse_policy(data)


@pytest.mark.parametrize(
    ("severity", "components", "source", "labels", "expected"),
    [
        (Severity.SEV1, ["Database"], "api", [], ("db", "ops", "rule 'db-critical'")),
        (Severity.SEV3, ["database"], "api", [], ("default", "ops", "default route")),  # severity does not match
        (Severity.SEV3, ["database"], "grafana", [], ("db", None, "rule 'grafana'")),  # the next rule matches
        (Severity.SEV1, ["database"], "grafana", [], ("db", "ops", "rule 'db-critical'")),  # first match wins
        (Severity.SEV3, [], "alertmanager", [{"service": "billing"}], ("default", "ops", "default route")),
        (Severity.SEV3, [], "alertmanager", [{"service": "billing", "env": "prod", "x": "y"}],
         ("default", "ops", "rule 'labelled'")),
    ],
)
def test_routing_picks_the_first_rule_whose_every_field_matches(
    severity: Severity, components: list[str], source: str, labels: list[dict[str, str]], expected: tuple
) -> None:
    choice = routing.route(rules_policy(), severity, components, source, labels)
    assert (choice.escalation, choice.team, choice.rule) == expected


TUESDAY_NOON_NY = datetime(2026, 12, 8, 12, 0, tzinfo=NEW_YORK)
TUESDAY_NIGHT_NY = datetime(2026, 12, 8, 23, 0, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("severity", "team", "at", "first", "action", "methods", "until"),
    [
        (Severity.SEV1, "ops", TUESDAY_NIGHT_NY, True, "page", ["voice", "sms"], None),
        (Severity.SEV2, "ops", TUESDAY_NOON_NY, True, "page", ["sms"], None),  # no rule: page_methods
        (Severity.SEV2, "ops", TUESDAY_NIGHT_NY, True, "page", ["email"], None),  # email only at night
        (Severity.SEV3, "ops", TUESDAY_NOON_NY, True, "page", ["email"], None),
        (Severity.SEV3, "ops", TUESDAY_NIGHT_NY, True, "defer", [], datetime(2026, 12, 9, 9, 0, tzinfo=NEW_YORK)),
        # Once someone has been paged, escalation goes on at night.
        (Severity.SEV3, "ops", TUESDAY_NIGHT_NY, False, "page", ["email"], None),
        # Without a team every hour counts as business hours: page rather than wait.
        (Severity.SEV3, None, TUESDAY_NIGHT_NY, True, "page", ["email"], None),
        (Severity.SEV4, "ops", TUESDAY_NOON_NY, True, "none", [], None),
        # Saturday 00:30 waits for Monday 09:00.
        (Severity.SEV3, "ops", datetime(2026, 12, 12, 0, 30, tzinfo=NEW_YORK), True, "defer", [],
         datetime(2026, 12, 14, 9, 0, tzinfo=NEW_YORK)),
    ],
)
def test_paging_rules_by_severity_and_time_of_day(
    severity: Severity, team: str | None, at: datetime, first: bool, action: str, methods: list[str],
    until: datetime | None,
) -> None:
    decision = routing.paging_decision(rules_policy(), severity, team, at, first=first)
    assert (decision.action, [m.value for m in decision.methods], decision.until) == (action, methods, until)


def test_a_rule_that_switches_a_severity_off_at_every_hour_means_it_never_pages() -> None:
    off = rules_policy(paging_rules=[{"severities": ["SEV-2"], "action": "none"}])
    assert not lifecycle.pages_for(off, Severity.SEV2)
    night_only = rules_policy(paging_rules=[{"severities": ["SEV-2"], "when": "outside_business_hours",
                                             "action": "none"}])
    assert lifecycle.pages_for(night_only, Severity.SEV2)
    assert routing.paging_decision(night_only, Severity.SEV2, "ops", TUESDAY_NIGHT_NY).action == "none"


def test_business_hours_that_start_in_the_spring_forward_gap_start_just_after_it() -> None:
    team = Team(members=[], time_zone="America/New_York",
                business_hours=[Window(days=["sun"], start=time(2, 30), end=time(4))])
    # 02:30 does not exist on 8 March 2026 in New York: the window opens at 03:30 EDT.
    opens = routing.next_business_hours(team, datetime(2026, 3, 8, 0, 0, tzinfo=NEW_YORK))
    assert opens == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_business_hours_keep_their_local_time_across_the_london_change() -> None:
    team = Team(members=[], time_zone="Europe/London")  # Mon-Fri 09:00-17:00
    # Friday 27 March 2026 (GMT) to Monday 30 March (BST): 09:00 BST is 08:00 UTC.
    assert routing.next_business_hours(team, datetime(2026, 3, 27, 18, tzinfo=UTC)) == datetime(
        2026, 3, 30, 8, 0, tzinfo=UTC
    )
    assert routing.in_business_hours(team, datetime(2026, 3, 30, 8, 0, tzinfo=UTC))
    assert not routing.in_business_hours(team, datetime(2026, 3, 30, 7, 59, tzinfo=UTC))


@settings(max_examples=200, deadline=None)
@given(
    tz=st.sampled_from(["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]),
    days=st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1, unique=True),
    start_minute=st.integers(min_value=0, max_value=24 * 60 - 1),
    length=st.integers(min_value=1, max_value=23 * 60),
    offset=st.integers(min_value=0, max_value=2 * 365 * 24 * 60),
)
def test_a_deferred_page_waits_exactly_until_business_hours_begin(
    tz: str, days: list[str], start_minute: int, length: int, offset: int
) -> None:
    end_minute = (start_minute + length) % (24 * 60)
    window = Window(days=days, start=time(start_minute // 60, start_minute % 60),
                    end=time(end_minute // 60, end_minute % 60))
    team = Team(members=[], time_zone=tz, business_hours=[window])
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=offset)
    opens = routing.next_business_hours(team, at)
    assert opens is not None and at < opens <= at + timedelta(days=8)
    assert routing.in_business_hours(team, opens)
    if not routing.in_business_hours(team, at):
        # Closed all the way from `at` to the opening: the page waits no less and no more.
        gap = opens - at
        probes = [at + gap * k / 8 for k in range(8)] + [opens - timedelta(seconds=1)]
        assert not any(routing.in_business_hours(team, p) for p in probes if p >= at)


# --- follow-ups: who still hears about an incident --------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "via", "person", "expected"),
    [
        (None, "schedule:platform-primary", "bob", None),
        # Taken off the rotation: no more follow-ups from it.
        (lambda d: d["schedules"]["platform-primary"]["layers"][0].update(participants=["alice", "carol"]),
         "schedule:platform-primary", "bob", "bob is no longer on schedule platform-primary"),
        (lambda d: d["teams"]["platform"].update(members=["alice", "carol"]),
         "team:platform", "bob", "bob is no longer a member of team platform"),
        # Someone who took the incident on (no via) keeps hearing while they are in the configuration.
        (lambda d: d["schedules"]["platform-primary"]["layers"][0].update(participants=["alice", "carol"]),
         None, "bob", None),
        (lambda d: (d["people"].pop("fay"), d["schedules"].pop("mail-primary"),
                    d["teams"]["mail"].update(members=["dan"]),
                    d["escalation_policies"]["mail"]["levels"].pop(0)),
         None, "fay", "fay is no longer in the on-call configuration"),
    ],
)
def test_who_still_gets_follow_ups_after_a_change(edit: Any, via: str | None, person: str, expected: str | None) -> None:
    policy = parse_policy(edited(edit) if edit else example_data())
    assert routing.still_targeted(policy, via, person) == expected


def test_a_level_the_configuration_lost_is_resolved_as_declared_with_the_people_of_now(week: Policy) -> None:
    at = london(2026, 12, 9, 3)
    gone = routing.resolve_level(week, "retired", 0, ["alice", "team:platform"], Severity.SEV1, None, at)
    assert gone.note == "escalation policy 'retired' is gone; used the level as declared"
    assert gone.people == ["alice", "bob", "carol"]
    short = routing.resolve_level(week, "mail", 5, ["schedule:platform-primary"], Severity.SEV1, None, at)
    assert short.people == ["bob"] and "has no level 6 now" in short.note
    fallback = routing.resolve_level(week, "default", -1, [], Severity.SEV1, None, at)
    assert fallback.people == ["erin"]


def test_the_example_starts_on_a_monday() -> None:
    assert date(2026, 11, 30).weekday() == 0


# --- reminders and notices follow what a page would do now ------------------------------------


@pytest.mark.parametrize(
    ("severity", "at", "paged_already", "ann", "ben"),
    [
        # SEV-4 pages nobody: email only, and nothing at all for someone without an address.
        (Severity.SEV4, TUESDAY_NOON_NY, False, "email", None),
        (Severity.SEV4, TUESDAY_NIGHT_NY, True, "email", None),
        # SEV-3 pages by email in business hours; someone with no email gets their page's fallback.
        (Severity.SEV3, TUESDAY_NOON_NY, False, "email", "sms"),
        # SEV-3 at night waits for business hours: nobody's phone buzzes for a reminder either...
        (Severity.SEV3, TUESDAY_NIGHT_NY, False, "email", None),
        # ...until someone was paged after all (escalation goes on at any hour).
        (Severity.SEV3, TUESDAY_NIGHT_NY, True, "email", "sms"),
        # SEV-2 texts by day; at night its rule pages by email, and so do its reminders.
        (Severity.SEV2, TUESDAY_NOON_NY, False, "sms", "sms"),
        (Severity.SEV2, TUESDAY_NIGHT_NY, False, "email", "sms"),
        # SEV-1 calls and texts: a reminder is a text, never a call.
        (Severity.SEV1, TUESDAY_NIGHT_NY, False, "sms", "sms"),
    ],
)
def test_reminders_and_notices_use_what_a_page_of_the_severity_would_use_now(
    severity: Severity, at: datetime, paged_already: bool, ann: str | None, ben: str | None
) -> None:
    policy = rules_policy()
    methods, pages_now = routing.notice_methods(policy, severity, "ops", at, paging_started=paged_already)
    got = [quiet_notice_method(policy.people[p], methods, pages_now) for p in ("ann", "ben")]
    assert [m.value if m else None for m in got] == [ann, ben]


def test_a_reminder_of_a_sev1_paged_by_call_only_is_a_text_when_the_person_has_one() -> None:
    dana = Person(name="Dana", phone="+15005550110", sms="+15005550110", email="d@example.com")
    assert quiet_notice_method(dana, [ContactMethod.VOICE], True) == ContactMethod.SMS
    only_phone = Person(name="Phil", phone="+15005550111")
    assert quiet_notice_method(only_phone, [ContactMethod.VOICE], True) == ContactMethod.VOICE
    assert quiet_notice_method(only_phone, [ContactMethod.EMAIL], False) is None
