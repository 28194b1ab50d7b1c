"""The stored configuration (versions in the read model) and the activities that read it."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.conftest import RecordingChannel
from warroom.activities.incident import IncidentActivities
from warroom.activities.notify import NotifierRegistry
from warroom.activities.oncall import OnCallActivities
from warroom.models.config_store import (
    ConfigConflict,
    CurrentConfig,
    change_summary,
    describe_change,
    json_document,
    save_version,
    seed_from_file,
)
from warroom.models.incident import NotificationKind, NotificationRequest
from warroom.models.policy import PolicyError
from warroom.models.routing import ResolveTargetsInput
from warroom.models.severity import Severity
from warroom.models.tables import AuditRow, NotificationRow, OnCallConfigRow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "oncall.yaml"
NOW = datetime(2026, 12, 9, 3, 0, tzinfo=UTC)


def document() -> dict[str, Any]:
    return dict(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))


def store(engine: Engine, doc: dict[str, Any], expected: int | None = None) -> tuple[int, bool]:
    with Session(engine) as session, session.begin():
        row, changed = save_version(session, doc, source="api", actor="dana", now=NOW, expected_version=expected)
        return row.version, changed


def versions(engine: Engine) -> list[tuple[int, str]]:
    with Session(engine) as session:
        return [(r.version, r.source) for r in session.scalars(select(OnCallConfigRow).order_by(OnCallConfigRow.version))]


def test_the_file_seeds_once_an_api_edit_survives_a_restart_and_a_changed_file_wins(
    engine: Engine, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    shutil.copy(EXAMPLE, policy_file)
    assert seed_from_file(engine, policy_file, NOW) == (1, True)
    assert seed_from_file(engine, policy_file, NOW) == (1, False)  # a restart with the same file
    edited = document()
    edited["ack_timeout"] = "5m"
    assert store(engine, edited) == (2, True)
    assert seed_from_file(engine, policy_file, NOW) == (2, False)  # the API's edit stays in force
    policy_file.write_text(EXAMPLE.read_text(encoding="utf-8") + "\n# reviewed again\n", encoding="utf-8")
    assert seed_from_file(engine, policy_file, NOW) == (3, True)  # the file changed: it is newer
    assert versions(engine) == [(1, "file"), (2, "api"), (3, "file")]
    current = CurrentConfig(engine).get()
    assert current is not None and current.version == 3 and current.policy.ack_timeout.total_seconds() == 600


def test_an_invalid_document_or_a_stale_edit_stores_nothing(engine: Engine) -> None:
    assert store(engine, document()) == (1, True)
    bad = document()
    bad["teams"]["platform"]["members"].append("zoe")
    with pytest.raises(PolicyError, match="teams.platform.members.3: unknown person 'zoe'"):
        store(engine, bad)
    with pytest.raises(ConfigConflict, match="at version 1, not 0"):
        store(engine, document() | {"ack_timeout": "1m"}, expected=0)
    assert store(engine, document()) == (1, False)  # the same document again: nothing new
    assert versions(engine) == [(1, "api")]


def test_a_bad_policy_file_stops_the_start_naming_the_key(engine: Engine, tmp_path: Path) -> None:
    bad = document()
    bad["schedules"]["mail-primary"]["layers"][0]["participants"] = []
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(PolicyError, match="schedules.mail-primary.layers.0.participants"):
        seed_from_file(engine, path, NOW)
    assert versions(engine) == []


def audit_rows(engine: Engine) -> list[AuditRow]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditRow).order_by(AuditRow.id)))


def test_every_start_up_load_that_changes_something_is_audited_and_one_that_does_not_is_not(
    engine: Engine, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    shutil.copy(EXAMPLE, policy_file)
    assert seed_from_file(engine, policy_file, NOW, where="warroom worker on host-a") == (1, True)
    [first] = audit_rows(engine)
    assert (first.actor, first.action, first.path, first.target, first.user_agent, first.at.replace(tzinfo=UTC)) == (
        "policy-file", "load_policy_file", str(policy_file), "version=1", "warroom worker on host-a", NOW)
    assert first.accepted and first.reason.startswith("version 1: first version: people alice, bob")

    assert seed_from_file(engine, policy_file, NOW) == (1, False)  # a restart with the same file
    assert len(audit_rows(engine)) == 1

    # An edit that is not an HTTP request (no middleware to record it) is audited where it is stored.
    edited = document()
    edited["ack_timeout"] = "5m"
    assert store(engine, edited) == (2, True)
    stored = audit_rows(engine)[-1]
    assert (stored.actor, stored.action, stored.reason) == ("dana", "store_config", "version 2: ack_timeout: 10m -> 5m")

    # The file changed (a comment only): it wins over the edit, and says what that undid.
    policy_file.write_text(EXAMPLE.read_text(encoding="utf-8") + "\n# reviewed\n", encoding="utf-8")
    later = NOW.replace(hour=4)
    assert seed_from_file(engine, policy_file, later) == (3, True)
    reverted = audit_rows(engine)[-1]
    assert (reverted.actor, reverted.reason, reverted.at.replace(tzinfo=UTC)) == (
        "policy-file", "version 3: ack_timeout: 5m -> 10m", later)

    # Reviewed again, same content: a version is stored (so the next start knows the file) but
    # nothing in force changed, so there is nothing to audit.
    policy_file.write_text(EXAMPLE.read_text(encoding="utf-8") + "\n# reviewed twice\n", encoding="utf-8")
    assert seed_from_file(engine, policy_file, later) == (4, True)
    assert [r.target for r in audit_rows(engine)] == ["version=1", "version=2", "version=3"]
    assert not any("+1500555" in r.reason + r.detail for r in audit_rows(engine))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["people"]["alice"].update(sms="+15005550123", time_zone="Europe/Paris"),
         "people changed: alice (sms, time_zone)"),
        (lambda d: d["schedules"].pop("mail-primary") and d["escalation_policies"]["mail"]["levels"].pop(0),
         "escalation_policies changed: mail (levels); schedules removed: mail-primary"),
        (lambda d: d["schedules"]["platform-primary"]["overrides"].clear(),
         "schedules changed: platform-primary (overrides)"),
        (lambda d: d.update(page_for=["SEV-1"], update_every={"SEV-1": "10m"}),
         'page_for: ["SEV-1","SEV-2","SEV-3"] -> ["SEV-1"]; update_every: {"SEV-1":"15m","SEV-2":"30m"} -> {"SEV-1":"10m"}'),
        (lambda d: d["routes"].append({"name": "dns", "match": {"components": ["dns"]}, "escalation": "mail"}),
         "routes changed (2 -> 3 entries)"),
        (lambda d: None, "nothing"),
    ],
)
def test_a_change_is_summarised_by_name_and_never_by_contact_details(change: Any, expected: str) -> None:
    before = json_doc()
    after = json_doc()
    change(after)
    assert describe_change(change_summary(before, after)) == expected


def json_doc() -> dict[str, Any]:
    return json_document(document())


def resolve_input(**extra: Any) -> ResolveTargetsInput:
    values: dict[str, Any] = {
        "incident_number": 1, "escalation": "default", "level": 0, "targets": ["schedule:platform-primary"],
        "severity": Severity.SEV1, "team": "platform", "at": NOW, "first": True,
    }
    values.update(extra)
    return ResolveTargetsInput(**values)


def test_resolve_targets_reads_the_newest_version_every_time(engine: Engine) -> None:
    acts = OnCallActivities(CurrentConfig(engine))
    assert acts.resolve_targets(resolve_input()).stored is False  # nothing stored: the workflow uses its copy
    store(engine, document())
    first = acts.resolve_targets(resolve_input()).resolution
    assert first is not None and (first.people, first.config_version) == (["bob"], 1)
    changed = document()
    changed["schedules"]["platform-primary"]["layers"][0]["participants"] = ["alice", "carol"]
    store(engine, changed)
    second = acts.resolve_targets(resolve_input()).resolution
    assert second is not None and (second.people, second.config_version) == (["carol"], 2)
    assert second.describe() == "schedule platform-primary → carol (on call)"
    assert second.contacts["carol"].sms == "+15005550010"


def request(person: str, via: str | None, key: str, kind: NotificationKind = NotificationKind.REMINDER) -> NotificationRequest:
    from warroom.models.policy import Person

    return NotificationRequest(
        key=key, incident_number=5, person_id=person, channel="email", kind=kind,
        person=Person(name=person, email=f"old-{person}@example.com"), subject="#5", text="update due", via=via,
    )


async def test_follow_ups_stop_for_someone_taken_off_the_rotation_and_use_current_addresses(engine: Engine) -> None:
    channel = RecordingChannel()
    acts = IncidentActivities(engine, NotifierRegistry(fallback=channel), config=CurrentConfig(engine))
    changed = document()
    changed["schedules"]["platform-primary"]["layers"][0]["participants"] = ["alice", "carol"]
    store(engine, changed)

    dropped = await acts.send_notification(request("bob", "schedule:platform-primary", "k1"))
    assert (dropped.status, dropped.detail) == ("dropped", "bob is no longer on schedule platform-primary")
    # bob holds a role (no via): he still hears, at the address the configuration has now.
    kept = await acts.send_notification(request("bob", None, "k2"))
    assert kept.status == "sent"
    assert [(r.person_id, r.person.email) for r in channel.sent] == [("bob", "bob@example.com")]
    # Someone no longer in the configuration at all hears nothing.
    gone = await acts.send_notification(request("zoe", None, "k3"))
    assert (gone.status, gone.detail) == ("dropped", "zoe is no longer in the on-call configuration")
    # A retry of the dropped key answers the same and still sends nothing.
    again = await acts.send_notification(request("bob", "schedule:platform-primary", "k1"))
    assert again.status == "dropped" and len(channel.sent) == 1
    with Session(engine) as session:
        rows = {r.key: (r.status, r.detail) for r in session.scalars(select(NotificationRow))}
    assert rows["k1"] == ("dropped", "bob is no longer on schedule platform-primary")


async def test_without_a_stored_configuration_messages_go_out_as_the_incident_says(engine: Engine) -> None:
    channel = RecordingChannel()
    acts = IncidentActivities(engine, NotifierRegistry(fallback=channel), config=CurrentConfig(engine))
    sent = await acts.send_notification(request("bob", "schedule:platform-primary", "k1"))
    assert sent.status == "sent" and channel.sent[0].person.email == "old-bob@example.com"
