"""The Alertmanager v4 payload -> the incident it declares and the alert events it carries."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from warroom.api.alerts import AlertmanagerPayload, declaration, group_hash, to_events
from warroom.models.severity import Severity

DATA = Path(__file__).resolve().parent.parent / "data"
"""Copies of the shared sample payloads, so the tests run from a fresh clone."""
FIRING = json.loads((DATA / "alertmanager-v4-firing.json").read_text())
RESOLVED = json.loads((DATA / "alertmanager-v4-resolved.json").read_text())


def payload(**changes: Any) -> AlertmanagerPayload:
    data = copy.deepcopy(FIRING)
    data.update(changes)
    return AlertmanagerPayload.model_validate(data)


def test_the_sample_declares_a_sev2_dns_incident_from_its_earliest_alert() -> None:
    got = declaration(payload())
    assert got["title"] == "DNS record updates are taking longer than 10 minutes to publish"
    assert got["severity"] == Severity.SEV2  # severity: major
    assert got["components"] == ["dns"]
    # two alerts started at 02:41:07.112 and 02:42:37.004: the impact began at the earlier
    assert got["impact_started_at"] == datetime(2026, 11, 30, 2, 41, 7, 112000, tzinfo=UTC)
    assert got["summary"] == "DNSUpdateLag: p95 publish lag 14m on ns1"


def test_the_sample_becomes_one_event_per_alert() -> None:
    events = to_events(payload())
    assert [(e.fingerprint, e.status, e.name) for e in events] == [
        ("5f1d2c9a8b7e6d40", "firing", "DNSUpdateLag"),
        ("a3b4c5d6e7f80912", "firing", "DNSUpdateLag"),
    ]
    assert events[0].labels["instance"] == "ns1.example.net"
    assert events[0].ends_at is None  # Alertmanager's zero time means "still firing"
    assert events[1].starts_at == datetime(2026, 11, 30, 2, 42, 37, 4000, tzinfo=UTC)


def test_the_most_severe_firing_alert_sets_the_severity() -> None:
    data = copy.deepcopy(FIRING)
    data["alerts"][1]["labels"]["severity"] = "critical"
    assert declaration(AlertmanagerPayload.model_validate(data))["severity"] == Severity.SEV1


def test_warroom_severity_label_overrides() -> None:
    data = copy.deepcopy(FIRING)
    for alert in data["alerts"]:
        alert["labels"]["warroom_severity"] = "SEV-1"
    assert declaration(AlertmanagerPayload.model_validate(data))["severity"] == Severity.SEV1


def test_resolved_alerts_do_not_set_the_impact_start_when_others_fire() -> None:
    data = copy.deepcopy(FIRING)
    data["alerts"][0]["status"] = "resolved"
    data["alerts"][0]["endsAt"] = "2026-11-30T03:00:00Z"
    got = declaration(AlertmanagerPayload.model_validate(data))
    assert got["impact_started_at"] == datetime(2026, 11, 30, 2, 42, 37, 4000, tzinfo=UTC)
    assert to_events(AlertmanagerPayload.model_validate(data))[0].ends_at == datetime(2026, 11, 30, 3, tzinfo=UTC)


def test_the_resolved_sample_is_accepted() -> None:
    events = to_events(AlertmanagerPayload.model_validate(RESOLVED))
    assert events and all(e.status == "resolved" for e in events)


@pytest.mark.parametrize("version", ["3", "5", ""])
def test_only_version_4_is_accepted(version: str) -> None:
    with pytest.raises(ValidationError, match="only Alertmanager webhook payload version 4 is supported"):
        payload(version=version)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"alerts": []}, "alerts"),
        ({"groupKey": ""}, "groupKey"),
        ({"version": None}, "version"),
    ],
)
def test_malformed_payloads_are_refused(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        payload(**change)


def test_an_unknown_alert_status_is_refused() -> None:
    data = copy.deepcopy(FIRING)
    data["alerts"][0]["status"] = "pending"
    with pytest.raises(ValidationError, match="status must be 'firing' or 'resolved'"):
        AlertmanagerPayload.model_validate(data)


def test_fingerprint_falls_back_to_a_stable_hash_of_the_labels() -> None:
    data = copy.deepcopy(FIRING)
    for alert in data["alerts"]:
        del alert["fingerprint"]
    first = [e.fingerprint for e in to_events(AlertmanagerPayload.model_validate(data))]
    again = [e.fingerprint for e in to_events(AlertmanagerPayload.model_validate(copy.deepcopy(data)))]
    assert first == again and first[0] != first[1]


def test_group_hash_depends_on_receiver_and_group_key() -> None:
    base = group_hash(payload())
    assert group_hash(payload()) == base
    assert group_hash(payload(receiver="other")) != base
    assert group_hash(payload(groupKey="{}:{alertname=\"Other\"}")) != base
