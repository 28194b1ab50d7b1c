"""Monitoring labels -> severity, and the severity helpers."""

from __future__ import annotations

import pytest

from warroom.models.severity import Severity, most_severe, parse_severity, severity_from_labels


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("critical", Severity.SEV1),
        ("major", Severity.SEV2),
        ("high", Severity.SEV2),
        ("error", Severity.SEV2),
        ("minor", Severity.SEV3),
        ("warning", Severity.SEV3),
        ("info", Severity.SEV4),
        ("low", Severity.SEV4),
        ("CRITICAL", Severity.SEV1),  # label values are matched without case
        (" Warning ", Severity.SEV3),
    ],
)
def test_severity_label_mapping(label: str, expected: Severity) -> None:
    assert severity_from_labels({"severity": label, "alertname": "X"}) == expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"severity": "info", "warroom_severity": "SEV-1"}, Severity.SEV1),  # the override wins
        ({"severity": "critical", "warroom_severity": "SEV-4"}, Severity.SEV4),  # in both directions
        ({"warroom_severity": "sev2"}, Severity.SEV2),
        ({"severity": "critical", "warroom_severity": "SEV-9"}, Severity.SEV1),  # a bad override is ignored
        ({"severity": "critical", "warroom_severity": ""}, Severity.SEV1),
    ],
)
def test_warroom_severity_overrides_the_label(labels: dict[str, str], expected: Severity) -> None:
    assert severity_from_labels(labels) == expected


@pytest.mark.parametrize(
    "labels",
    [{"severity": "page"}, {"severity": ""}, {}, {"priority": "P1"}],
)
def test_unknown_or_missing_label_takes_the_default(labels: dict[str, str]) -> None:
    assert severity_from_labels(labels) == Severity.SEV3
    assert severity_from_labels(labels, default=Severity.SEV2) == Severity.SEV2


@pytest.mark.parametrize(
    ("text", "expected"),
    [("SEV-1", Severity.SEV1), ("sev2", Severity.SEV2), ("SEV_3", Severity.SEV3), ("4", Severity.SEV4), (" SEV-2 ", Severity.SEV2)],
)
def test_parse_severity(text: str, expected: Severity) -> None:
    assert parse_severity(text) == expected


@pytest.mark.parametrize("text", ["SEV-0", "SEV-5", "critical", "", "SEV"])
def test_parse_severity_refuses_unknown_levels(text: str) -> None:
    with pytest.raises(ValueError, match="unknown severity"):
        parse_severity(text)


def test_rank_label_and_most_severe() -> None:
    assert [s.rank for s in Severity] == [1, 2, 3, 4]
    assert [s.label for s in Severity] == ["critical", "major", "minor", "low"]
    assert most_severe(Severity.SEV3, Severity.SEV1, Severity.SEV2) == Severity.SEV1
    assert most_severe(Severity.SEV4) == Severity.SEV4
