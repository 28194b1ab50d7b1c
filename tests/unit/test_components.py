"""Component states: the catalog, severity -> state, and the state at an instant, table-style."""

from datetime import UTC, datetime, timedelta

import pytest

from warroom.models.components import (
    DEFAULT_STATUSPAGE_PATH,
    CatalogError,
    ComponentState,
    ComponentStateInput,
    Impact,
    Indicator,
    Maintenance,
    component_states,
    current_impacts,
    holds,
    impacts_after_edit,
    impacts_after_severity_change,
    impacts_at_declaration,
    impacts_at_resolution,
    load_catalog,
    overall,
    parse_catalog,
    state_for_severity,
    states_held,
)
from warroom.models.severity import Severity

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
OP, DEG, PART, MAJ, MAINT = (
    ComponentState.OPERATIONAL,
    ComponentState.DEGRADED_PERFORMANCE,
    ComponentState.PARTIAL_OUTAGE,
    ComponentState.MAJOR_OUTAGE,
    ComponentState.UNDER_MAINTENANCE,
)
CATALOG = load_catalog(DEFAULT_STATUSPAGE_PATH)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("severity", "state"),
    [(Severity.SEV1, MAJ), (Severity.SEV2, PART), (Severity.SEV3, DEG), (Severity.SEV4, OP)],
)
def test_severity_sets_the_state_of_the_incidents_components(severity: Severity, state: ComponentState) -> None:
    assert state_for_severity(severity) == state


def imp(incident: int, component: str, state: ComponentState, start: float, end: float | None = None) -> Impact:
    return Impact(incident, component, state, at(start), at(end) if end is not None else None)


@pytest.mark.parametrize(
    ("impacts", "maintenance", "when", "expected"),
    [
        # Nothing recorded: every component operational.
        ([], [], 0, {}),
        # One open incident holds DNS; the incident names it by display name or alias.
        ([imp(1, "DNS", PART, 0)], [], 5, {"dns": PART}),
        ([imp(1, "cpanel", MAJ, 0)], [], 5, {"control-panel": MAJ}),
        # Before it started, and once its interval closed (resolved): operational again.
        ([imp(1, "dns", PART, 10, 20)], [], 5, {}),
        ([imp(1, "dns", PART, 10, 20)], [], 20, {}),
        # Two incidents on DNS: resolving the worse one leaves the other's state.
        ([imp(1, "dns", MAJ, 0, 30), imp(2, "dns", DEG, 10)], [], 29, {"dns": MAJ}),
        ([imp(1, "dns", MAJ, 0, 30), imp(2, "dns", DEG, 10)], [], 30, {"dns": DEG}),
        # ...and resolving the other as well restores it.
        ([imp(1, "dns", MAJ, 0, 30), imp(2, "dns", DEG, 10, 40)], [], 40, {}),
        # Maintenance puts its components under maintenance, only inside the window.
        ([], [Maintenance(1, ("email", "billing"), at(0), at(60))], 30, {"email": MAINT, "billing": MAINT}),
        ([], [Maintenance(1, ("email",), at(0), at(60))], 60, {}),
        # An incident during maintenance is worse than the maintenance; a SEV-4 one is not.
        ([imp(1, "email", PART, 10)], [Maintenance(1, ("email",), at(0), at(60))], 30, {"email": PART}),
        ([imp(1, "email", OP, 10)], [Maintenance(1, ("email",), at(0), at(60))], 30, {"email": MAINT}),
        # Names the catalog does not know change nothing.
        ([imp(1, "mainframe", MAJ, 0)], [], 5, {}),
    ],
)
def test_component_state_at_an_instant(
    impacts: list[Impact], maintenance: list[Maintenance], when: float, expected: dict[str, ComponentState]
) -> None:
    states = component_states(CATALOG, impacts, maintenance, at(when))
    assert states == {c.id: expected.get(c.id, OP) for c in CATALOG.components}


def test_impacts_follow_severity_until_set_by_hand_and_all_close_at_resolution() -> None:
    impacts = impacts_at_declaration(["dns", "email", "dns"], Severity.SEV2, at(0))
    assert current_impacts(impacts) == {"dns": PART, "email": PART}
    impacts = impacts_after_edit(impacts, ComponentStateInput(component="email", state=DEG, by="alice"), at(5))
    impacts = impacts_after_severity_change(impacts, Severity.SEV1, at(10))
    # DNS follows the raise; email keeps the state alice gave it.
    assert current_impacts(impacts) == {"dns": MAJ, "email": DEG}
    # A component the incident did not name can be added.
    impacts = impacts_after_edit(impacts, ComponentStateInput(component="api", state=PART, by="bob"), at(12))
    closed = impacts_at_resolution(impacts, at(20))
    assert current_impacts(closed) == {}
    # The recorded intervals tell the whole story, each closed exactly where the next began.
    story = [(i.component, i.state, i.since, i.until) for i in closed]
    assert story == [
        ("dns", PART, at(0), at(10)),
        ("email", PART, at(0), at(5)),
        ("email", DEG, at(5), at(20)),
        ("dns", MAJ, at(10), at(20)),
        ("api", PART, at(12), at(20)),
    ]


def test_sev4_holds_components_operational_so_a_raise_knows_which_to_move() -> None:
    impacts = impacts_at_declaration(["billing"], Severity.SEV4, at(0))
    assert current_impacts(impacts) == {"billing": OP}
    impacts = impacts_after_severity_change(impacts, Severity.SEV2, at(3))
    assert current_impacts(impacts) == {"billing": PART}


@pytest.mark.parametrize(
    ("states", "severities", "indicator"),
    [
        ({"dns": OP, "api": OP}, [], Indicator.NONE),
        ({"dns": MAINT, "api": OP}, [], Indicator.MAINTENANCE),
        ({"dns": MAINT, "api": DEG}, [], Indicator.MINOR),
        ({"dns": PART, "api": DEG}, [], Indicator.MAJOR),
        ({"dns": PART, "api": MAJ}, [], Indicator.CRITICAL),
        # An open incident on no catalog component still shows in the headline.
        ({"dns": OP}, [Severity.SEV2], Indicator.MAJOR),
        ({"dns": OP}, [Severity.SEV4], Indicator.NONE),
        ({"dns": DEG}, [Severity.SEV1], Indicator.CRITICAL),
    ],
)
def test_overall_indicator_is_the_worst_of_components_and_open_incidents(
    states: dict[str, ComponentState], severities: list[Severity], indicator: Indicator
) -> None:
    assert overall(states, severities) == indicator


def test_default_catalog_lists_the_portal_components_in_groups() -> None:
    assert [c.id for c in CATALOG.components] == ["control-panel", "api", "billing", "dns", "email"]
    assert [(g, [c.id for c in cs]) for g, cs in CATALOG.groups()] == [
        ("Customer portal", ["control-panel", "api", "billing"]),
        ("Hosting services", ["dns", "email"]),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a mapping"),
        ({"components": []}, "components: List should have at least 1 item"),
        ({"components": [{"id": "DNS!", "name": "DNS"}]}, "components.0.id: 'DNS!' is not a component id"),
        ({"components": [{"id": "dns", "name": "DNS"}, {"id": "dns", "name": "Other"}]}, "components.1: duplicate id 'dns'"),
        (
            {"components": [{"id": "dns", "name": "DNS"}, {"id": "mail", "name": "Email", "aliases": ["dns"]}]},
            "components.1: the name 'dns' is already used by 'dns'",
        ),
        ({"components": [{"id": "dns", "name": "DNS", "colour": "red"}]}, "components.0.colour: unknown key"),
        ({"page": {"nme": "x"}, "components": [{"id": "dns", "name": "DNS"}]}, "page.nme: unknown key"),
    ],
)
def test_bad_configuration_is_refused_naming_the_key(data: object, message: str) -> None:
    with pytest.raises(CatalogError, match="^test.yaml: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_catalog(data, "test.yaml")


def test_missing_or_broken_file_is_refused_with_the_path(tmp_path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("components: [\n")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(bad)


@pytest.mark.parametrize(("name", "cid"), [
    ("control-panel", "control-panel"),
    ("Control panel", "control-panel"),
    ("  CONTROL_PANEL ", "control-panel"),
    ("cpanel", "control-panel"),
    ("Web Mail", "email"),
    ("API", "api"),
    ("dns-2", None),
    ("", None),
])
def test_a_component_is_found_by_its_id_name_or_alias_written_loosely(name: str, cid: str | None) -> None:
    assert CATALOG.resolve(name) == cid
    # A catalog that travelled (copied, or serialised and read back) still finds its names.
    assert CATALOG.model_copy().resolve(name) == cid
    assert type(CATALOG).model_validate(CATALOG.model_dump()).resolve(name) == cid


def test_states_from_intervals_resolved_once_follow_each_impact_and_window() -> None:
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    impacts = [Impact(incident=1, component="portal", state=ComponentState.PARTIAL_OUTAGE, start=t0,
                      end=t0 + timedelta(hours=2)),
               Impact(incident=2, component="Control panel", state=ComponentState.MAJOR_OUTAGE,
                      start=t0 + timedelta(hours=1)),
               Impact(incident=3, component="not-in-the-catalog", state=ComponentState.MAJOR_OUTAGE, start=t0)]
    windows = [Maintenance(id=1, components=("mail", "email", "dns"), start=t0 - timedelta(hours=1),
                           end=t0 + timedelta(minutes=30))]
    held = holds(CATALOG, impacts, windows)  # resolved once, asked at many instants
    ok, maint = ComponentState.OPERATIONAL, ComponentState.UNDER_MAINTENANCE
    expected = {  # minutes after t0: (control-panel, email, dns)
        -61: (ok, ok, ok),
        -60: (ok, maint, maint),
        0: (ComponentState.PARTIAL_OUTAGE, maint, maint),
        30: (ComponentState.PARTIAL_OUTAGE, ok, ok),
        60: (ComponentState.MAJOR_OUTAGE, ok, ok),
        120: (ComponentState.MAJOR_OUTAGE, ok, ok),
    }
    for minutes, want in expected.items():
        states = states_held(CATALOG, held, t0 + timedelta(minutes=minutes))
        assert (states["control-panel"], states["email"], states["dns"]) == want, minutes
        assert set(states) == {c.id for c in CATALOG.components}
