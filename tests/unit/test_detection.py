"""Detection rules, table-style: what a rule does to an alert, grouping keys and windows,
what a group declares, and the payloads each source accepts or refuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tests.stack import case
from warroom.api.alerts import GenericAlert, GrafanaPayload, grafana_events
from warroom.models import detection
from warroom.models.detection import AlertRule, DetectionError, apply_rules, parse_detection, plain_text
from warroom.models.incident import AlertEvent
from warroom.models.severity import Severity

T0 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


def alert(source: str = "generic", **fields: Any) -> AlertEvent:
    return AlertEvent(source=source, fingerprint=fields.pop("fingerprint", "fp"), **fields)


RULES = parse_detection({
    "alert_rules": [
        {"name": "staging", "match": {"labels": {"env": "staging"}}, "action": "record"},
        {"name": "noise", "match": {"sources": ["grafana"], "labels": {"alertname": "Watchdog"}}, "action": "drop"},
        {"name": "dns", "match": {"labels": {"team": "dns"}}, "component": "dns", "severity": "SEV-2",
         "escalation": "dns-oncall"},
        {"match": {"components": ["Billing"]}, "severity": "critical"},
        {"name": "any-region", "match": {"labels": {"region": "*"}, "sources": ["alertmanager"]},
         "escalation": "regional"},
    ]
}).alert_rules


@pytest.mark.parametrize(
    ("given", "action", "component", "severity", "escalation", "rule"),
    [
        # no rule matches: the source's own component and severity, SEV-3 when it gave none
        (alert(component="api"), "incident", "api", Severity.SEV3, None, None),
        (alert(labels={"component": "email", "severity": "critical"}), "incident", "email", Severity.SEV1, None, None),
        (alert(severity=Severity.SEV2), "incident", None, Severity.SEV2, None, None),
        # record-only and drop
        (alert(labels={"env": "staging"}, severity=Severity.SEV1), "record", None, Severity.SEV1, None,
         "alert rule 'staging'"),
        (alert("grafana", labels={"alertname": "Watchdog"}), "drop", None, Severity.SEV3, None, "alert rule 'noise'"),
        # the same labels from another source are not noise
        (alert("generic", labels={"alertname": "Watchdog"}), "incident", None, Severity.SEV3, None, None),
        # a rule sets component, severity and escalation policy
        (alert(labels={"team": "dns"}, severity=Severity.SEV4), "incident", "dns", Severity.SEV2, "dns-oncall",
         "alert rule 'dns'"),
        # a rule without a severity keeps the alert's; component matched case-insensitively; unnamed rule by number
        (alert(component="billing", severity=Severity.SEV3), "incident", "billing", Severity.SEV1, None,
         "alert rule 4"),
        # "*" means the label is present, with any value
        (alert("alertmanager", labels={"region": "eu-1"}), "incident", None, Severity.SEV3, "regional",
         "alert rule 'any-region'"),
        (alert("alertmanager", labels={}), "incident", None, Severity.SEV3, None, None),
        # the first matching rule wins
        (alert(labels={"env": "staging", "team": "dns"}), "record", None, Severity.SEV3, None, "alert rule 'staging'"),
    ],
)
def test_rules(given: AlertEvent, action: str, component: str | None, severity: Severity, escalation: str | None,
               rule: str | None) -> None:
    routed = apply_rules(RULES, given)
    assert (routed.action, routed.component, routed.severity, routed.escalation, routed.rule) == (
        action, component, severity, escalation, rule)


@pytest.mark.parametrize(
    ("last", "now", "window", "joins"),
    [
        (T0, T0, timedelta(minutes=10), True),
        (T0, T0 + timedelta(minutes=10), timedelta(minutes=10), True),
        (T0, T0 + timedelta(minutes=10, seconds=1), timedelta(minutes=10), False),
        (T0, T0 + timedelta(seconds=1), timedelta(0), False),  # 0s: group by key only
        (None, T0, timedelta(minutes=10), False),
        (T0 + timedelta(seconds=5), T0, timedelta(minutes=10), False),  # a window from the future is not trusted
    ],
)
def test_component_window(last: datetime | None, now: datetime, window: timedelta, joins: bool) -> None:
    assert detection.joins_component_window(last, now, window) is joins


def test_group_hashes() -> None:
    base = detection.group_hash("generic", "k")
    assert detection.group_hash("generic", "k") == base
    assert detection.group_hash("grafana", "k") != base  # keys are per source
    assert detection.group_hash("generic", "k2") != base
    assert detection.component_hash("DNS ") == detection.component_hash("dns")
    assert detection.component_hash("dns") != detection.component_hash("email")


def test_partition_by_dedup_key_then_delivery_key() -> None:
    routed = [
        apply_rules(RULES, alert(fingerprint="a", dedup_key="k1")),
        apply_rules(RULES, alert(fingerprint="b")),
        apply_rules(RULES, alert(fingerprint="c", dedup_key="k1")),
        apply_rules(RULES, alert(fingerprint="d", labels={"env": "staging"})),  # record-only: no group
    ]
    groups = detection.partition(routed, "delivery")
    assert {k: [r.alert.fingerprint for r in v] for k, v in groups.items()} == {"k1": ["a", "c"], "delivery": ["b"]}


def test_declaration_takes_the_most_severe_firing_alert() -> None:
    group = [
        apply_rules(RULES, alert(fingerprint="a", summary="Slow DNS", component="dns", severity=Severity.SEV3,
                                 starts_at=T0 + timedelta(minutes=2))),
        apply_rules(RULES, alert(fingerprint="b", labels={"team": "dns"}, summary="DNS down", starts_at=T0)),
        apply_rules(RULES, alert(fingerprint="c", status="resolved", severity=Severity.SEV1, component="email")),
    ]
    details = detection.declaration(group)
    assert details["title"] == "Slow DNS"
    assert details["severity"] == Severity.SEV2
    assert details["components"] == ["dns"]
    assert details["impact_started_at"] == T0
    assert (details["escalation"], details["escalation_rule"]) == ("dns-oncall", "alert rule 'dns'")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"alert_rules": [{"match": {"sources": ["pagerduty"]}}]}, "unknown source 'pagerduty'"),
        ({"alert_rules": [{"action": "page"}]}, "alert_rules.0.action"),
        ({"alert_rules": [{"severity": "SEV-9"}]}, "SEV-1, SEV-2"),
        ({"grouping": {"component_window": "ten minutes"}}, "grouping.component_window"),
        ({"alert_rules": [{"matches": {}}]}, "unknown key"),
        ({"heartbeats": [{"name": "a", "every": "0s"}]}, "positive"),
        ({"heartbeats": [{"name": "a", "every": "1m"}, {"name": "a", "every": "2m"}]}, "defined twice"),
        ({"heartbeats": [{"name": "Nightly Backup", "every": "1m"}]}, "lower-case"),
        ([1, 2], "mapping"),
    ],
)
def test_bad_configuration_names_the_key(data: Any, reason: str) -> None:
    with pytest.raises(DetectionError) as err:
        parse_detection(data)
    assert reason in str(err.value)


def test_shipped_configuration_loads_and_changes_no_alert_by_default() -> None:
    config = detection.load_detection(detection.DEFAULT_DETECTION_PATH)
    assert config.grouping.component_window == timedelta(minutes=10)
    assert config.alert_rules == [] and config.heartbeats == [] and config.checks == []
    # its commented examples are valid rules
    text = detection.DEFAULT_DETECTION_PATH.read_text(encoding="utf-8")
    block = text.split("alert_rules: []\n", 1)[1].split("\n\n", 1)[0]
    examples = "\n".join(line.replace("#", " ", 1) for line in block.splitlines())
    rules = [AlertRule.model_validate(r) for r in yaml.safe_load(examples)]
    assert [r.action for r in rules] == ["record", "incident"]


def test_grafana_sample_in_the_common_shape() -> None:
    payload = GrafanaPayload.model_validate(json.loads(case("grafana-webhook-firing.json")))
    [event] = grafana_events(payload)
    assert (event.source, event.fingerprint, event.status, event.name) == (
        "grafana", "0c1e2f3a4b5c6d7e", "firing", "ControlPanel5xx")
    assert event.summary == "Control panel returns 5xx for 38% of requests"
    assert (event.component, event.severity) == ("control-panel", Severity.SEV1)
    assert event.starts_at == datetime(2026, 11, 30, 14, 3, tzinfo=UTC)
    assert event.ends_at is None
    assert "https://grafana.example.internal/d/portal" in event.links
    assert "https://runbooks.example.internal/rollback" in event.links


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"title": "t", "status": "burning"}, "status"),
        ({"title": "t", "severity": "SEV-7"}, "SEV-1"),
        ({"title": "t", "sevrity": "critical"}, "sevrity"),
        ({"title": "t", "links": ["javascript:alert(1)"]}, "http"),
        ({"title": "t", "links": ["https://a"] * 11}, "links"),
        ({"title": "t", "starts_at": "2026-11-30T02:41:07"}, "time zone"),
        ({"title": "t", "dedup_key": "k" * 301}, "dedup_key"),
    ],
)
def test_generic_alert_refuses_with_a_reason(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        GenericAlert.model_validate(body)
    assert reason in str(err.value)


def test_generic_alert_in_the_common_shape() -> None:
    a = GenericAlert.model_validate({"title": "Backups failing", "severity": "major", "component": "control-panel",
                                     "links": ["https://ci.example.com/job/9"]})
    event = a.event()
    assert (event.severity, event.component, event.source) == (Severity.SEV2, "control-panel", "generic")
    # no dedup key: the same title and component are the same alert
    again = GenericAlert.model_validate({"title": "Backups failing", "component": "control-panel"})
    assert again.key() == a.key() and again.event().fingerprint == event.fingerprint
    other = GenericAlert.model_validate({"title": "Backups failing", "component": "dns"})
    assert other.key() != a.key()
    assert GenericAlert.model_validate({"title": "t", "severity": "SEV1"}).event().severity == Severity.SEV1


@pytest.mark.parametrize(("given", "shown"), [
    ("Panel <b>down</b>", "Panel down"),
    ("<script>alert(1)</script>502", "alert(1)502"),
    ("a\x00b\x1bc", "abc"),
    ("invoice \u202egpj.exe", "invoice gpj.exe"),      # a right-to-left override would show 'exe.jpg'
    ("\u2066hidden\u2069 \u200fmark", "hidden mark"),
    ("日本語のレポート", "日本語のレポート"),
])
def test_a_customers_words_are_kept_as_plain_text(given: str, shown: str) -> None:
    assert plain_text(given) == shown
