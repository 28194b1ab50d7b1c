"""Metric arithmetic from explicit instants, table-style.

How the awkward cases count (the same words are on the dashboard):
- never acknowledged: out of the MTTA mean, counted in ``never_acknowledged``;
- still open: out of the MTTR mean, counted in ``open``;
- no impact start recorded: out of the MTTD mean;
- postmortem / action item not yet due and not done: ``pending``, out of the on-time ratio.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warroom.models import metrics
from warroom.models.metrics import ActionItemFacts, IncidentFacts

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def inc(n: int = 1, sev: str = "SEV-2", *, impact: float | None = None, detect: float = 0, ack: float | None = None,
        resolve: float | None = None, pm_deadline: datetime | None = None,
        pm_submitted: datetime | None = None) -> IncidentFacts:
    return IncidentFacts(
        number=n, severity=sev, declared_at=m(detect), detected_at=m(detect),
        impact_started_at=m(impact) if impact is not None else None,
        acknowledged_at=m(ack) if ack is not None else None,
        resolved_at=m(resolve) if resolve is not None else None,
        postmortem_deadline=pm_deadline, postmortem_submitted_at=pm_submitted,
    )


@pytest.mark.parametrize(
    ("incidents", "expected"),
    [
        # (mttd, mtta, mttr) in seconds, and (never acknowledged, open)
        pytest.param([], (None, None, None, 0, 0), id="no incidents: no means, not zeros"),
        pytest.param([inc(impact=-4, ack=3, resolve=30)], (240.0, 180.0, 1800.0, 0, 0), id="one complete incident"),
        pytest.param([inc(ack=3, resolve=30), inc(2, impact=-10, ack=7, resolve=90)],
                     (600.0, 300.0, 3600.0, 0, 0), id="mttd only over incidents with an impact start"),
        pytest.param([inc(ack=2, resolve=10), inc(2, resolve=20)], (None, 120.0, 900.0, 1, 0),
                     id="resolved without an ack: out of MTTA, counted as never acknowledged"),
        pytest.param([inc(ack=4, resolve=10), inc(2)], (None, 240.0, 600.0, 1, 1),
                     id="still open and unacknowledged: out of MTTA and MTTR, counted in both"),
        pytest.param([inc(ack=5), inc(2, ack=1, resolve=61)], (None, 180.0, 3660.0, 0, 1),
                     id="acknowledged but still open"),
        pytest.param([inc(impact=5, ack=1, resolve=2)], (0.0, 60.0, 120.0, 0, 0),
                     id="impact start after detection counts as zero"),
    ],
)
def test_means_from_instants(incidents: list[IncidentFacts], expected: tuple[object, ...]) -> None:
    s = metrics.stats(incidents, [], NOW)
    assert (s.mttd, s.mtta, s.mttr, s.unacknowledged, s.open) == expected
    assert s.incidents == len(incidents)


DEADLINE = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("submitted", "now", "expected"),
    [
        (DEADLINE - timedelta(hours=1), NOW, "on_time"),
        (DEADLINE, NOW, "on_time"),  # at the deadline is on time
        (DEADLINE + timedelta(seconds=1), NOW, "late"),
        (None, DEADLINE + timedelta(seconds=1), "late"),  # not submitted and past due: already late
        (None, DEADLINE - timedelta(hours=1), "pending"),
    ],
)
def test_postmortem_outcome(submitted: datetime | None, now: datetime, expected: str) -> None:
    facts = inc(resolve=10, pm_deadline=DEADLINE, pm_submitted=submitted)
    assert metrics.postmortem_outcome(facts, now) == expected


def test_postmortem_ratio_leaves_out_pending_and_incidents_that_need_none() -> None:
    group = [
        inc(1, resolve=5, pm_deadline=DEADLINE, pm_submitted=DEADLINE - timedelta(hours=2)),  # on time
        inc(2, resolve=5, pm_deadline=DEADLINE, pm_submitted=DEADLINE + timedelta(hours=2)),  # late
        inc(3, resolve=5, pm_deadline=DEADLINE),  # still within its deadline at now
        inc(4, "SEV-3", resolve=5),  # needs none
    ]
    s = metrics.stats(group, [], DEADLINE - timedelta(minutes=1))
    assert (s.postmortems.on_time, s.postmortems.late, s.postmortems.pending) == (1, 1, 1)
    assert s.postmortems.rate == 0.5


@pytest.mark.parametrize(
    ("done", "now", "expected"),
    [
        (DEADLINE - timedelta(days=1), NOW, "on_time"),
        (DEADLINE + timedelta(minutes=1), NOW, "late"),
        (None, DEADLINE + timedelta(minutes=1), "late"),
        (None, DEADLINE - timedelta(minutes=1), "pending"),
    ],
)
def test_action_item_outcome(done: datetime | None, now: datetime, expected: str) -> None:
    assert metrics.action_item_outcome(ActionItemFacts(1, "SEV-1", due=DEADLINE, done_at=done), now) == expected


def test_action_item_rate_is_none_when_nothing_is_known_yet() -> None:
    s = metrics.stats([], [ActionItemFacts(1, "SEV-1", due=NOW + timedelta(days=1))], NOW)
    assert s.action_items.pending == 1 and s.action_items.rate is None


@pytest.mark.parametrize(
    ("t", "period", "start", "label"),
    [
        (datetime(2026, 3, 4, 15, 0, tzinfo=UTC), "week", datetime(2026, 3, 2, tzinfo=UTC), "2026-W10"),
        (datetime(2026, 3, 2, 0, 0, tzinfo=UTC), "week", datetime(2026, 3, 2, tzinfo=UTC), "2026-W10"),
        (datetime(2026, 3, 1, 23, 59, tzinfo=UTC), "week", datetime(2026, 2, 23, tzinfo=UTC), "2026-W09"),
        (datetime(2027, 1, 1, 8, 0, tzinfo=UTC), "week", datetime(2026, 12, 28, tzinfo=UTC), "2026-W53"),
        (datetime(2026, 3, 31, 23, 59, tzinfo=UTC), "month", datetime(2026, 3, 1, tzinfo=UTC), "2026-03"),
        (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), "month", datetime(2026, 12, 1, tzinfo=UTC), "2026-12"),
    ],
)
def test_period_of_an_instant(t: datetime, period: str, start: datetime, label: str) -> None:
    assert metrics.period_start(t, period) == start
    assert metrics.period_label(start, period) == label


def test_by_period_splits_by_week_and_severity_and_keeps_empty_weeks() -> None:
    week1 = inc(1, "SEV-1", ack=2, resolve=20)
    week1b = inc(2, "SEV-2", detect=60, ack=66, resolve=120)
    week3 = inc(3, "SEV-1", detect=60 * 24 * 15, ack=60 * 24 * 15 + 10)  # 17 March, still open
    items = [ActionItemFacts(1, "SEV-1", due=m(60 * 24 * 2), done_at=m(60 * 24))]
    rows = metrics.by_period([week1, week1b, week3], items, "week", T0, NOW, NOW, severities=["SEV-1", "SEV-2"])
    table = {(r.period, r.severity): r.stats for r in rows}
    assert [p for p, s in table if s == "all"] == ["2026-W10", "2026-W11", "2026-W12"]
    assert table[("2026-W10", "all")].incidents == 2 and table[("2026-W10", "all")].mtta == 240.0
    assert table[("2026-W10", "SEV-1")].mttr == 1200.0 and table[("2026-W10", "SEV-2")].mttr == 3600.0
    assert table[("2026-W10", "SEV-1")].action_items.rate == 1.0
    assert table[("2026-W11", "all")].incidents == 0 and table[("2026-W11", "all")].mtta is None
    assert table[("2026-W12", "SEV-1")].open == 1 and table[("2026-W12", "SEV-1")].mttr is None


def test_months_roll_over_the_year() -> None:
    starts = metrics.periods_between(datetime(2026, 11, 15, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC), "month")
    assert [metrics.period_label(s, "month") for s in starts] == ["2026-11", "2026-12", "2027-01", "2027-02"]


def test_prometheus_exposition_parses_and_says_the_numbers() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from warroom.api.postmortems import prometheus_text

    now = T0 + timedelta(days=3)
    incidents = [
        inc(1, "SEV-1", impact=-2, ack=3, resolve=30, pm_deadline=now - timedelta(hours=1)),  # postmortem overdue
        inc(2, "SEV-2"),  # open, never acknowledged
        inc(3, "SEV-1", detect=-60 * 24 * 10, ack=-60 * 24 * 10 + 1, resolve=-60 * 24 * 10 + 5),  # 10 days ago
    ]
    items = [ActionItemFacts(1, "SEV-1", due=now - timedelta(days=1)), ActionItemFacts(1, "SEV-1", due=now + timedelta(days=1))]
    families = {f.name: f for f in text_string_to_metric_families(prometheus_text(incidents, items, now))}
    value = {(f.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert value[("warroom_incidents", (("severity", "all"), ("window", "7d")))] == 2
    assert value[("warroom_incidents", (("severity", "SEV-1"), ("window", "30d")))] == 2
    assert value[("warroom_mtta_seconds", (("severity", "SEV-1"), ("window", "7d")))] == 180
    assert value[("warroom_mttd_seconds", (("severity", "all"), ("window", "7d")))] == 120
    assert value[("warroom_incidents_unacknowledged", (("severity", "SEV-2"), ("window", "7d")))] == 1
    assert ("warroom_mttr_seconds", (("severity", "SEV-2"), ("window", "7d"))) not in value  # nothing resolved: no sample
    assert value[("warroom_postmortems_pending", (("state", "overdue"),))] == 1
    assert value[("warroom_action_items_open", (("state", "overdue"),))] == 1
    assert value[("warroom_action_items_open", (("state", "open"),))] == 1
    assert value[("warroom_action_items_on_time_ratio", (("severity", "all"), ("window", "7d")))] == 0
    assert families["warroom_mtta_seconds"].type == "gauge" and "never-acknowledged" in families[
        "warroom_mtta_seconds"].documentation
