"""The policy file: the issue's example is accepted; every mistake names its key."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.unit.policies import ISSUE_EXAMPLE_YAML, example_data
from warroom.models.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy, parse_policy
from warroom.models.severity import Severity


def test_the_issue_example_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(ISSUE_EXAMPLE_YAML)
    policy = load_policy(path)
    assert policy.ack_timeout == timedelta(minutes=10)
    assert policy.first_status_within == timedelta(minutes=5)
    assert policy.update_every == {Severity.SEV1: timedelta(minutes=15), Severity.SEV2: timedelta(minutes=30)}
    assert policy.postmortem_required_for == [Severity.SEV1, Severity.SEV2]
    assert policy.postmortem_within == timedelta(hours=48)
    assert policy.engineering_lead == "erin"
    assert policy.people["bob"].name == "Bob Ruiz"
    assert [level.notify for level in policy.escalation.levels] == [["alice"], ["bob"]]
    assert policy.escalation.repeat == 1
    assert policy.escalation.fallback == ["erin"]
    assert policy.level_timeout(1) == timedelta(minutes=10)


def test_the_shipped_default_is_accepted() -> None:
    policy = load_policy(DEFAULT_POLICY_PATH)
    assert policy.page_for == [Severity.SEV1, Severity.SEV2, Severity.SEV3]


def test_the_policy_survives_a_round_trip_through_a_workflow_payload() -> None:
    """Each incident carries a snapshot of the policy in its history."""
    policy = parse_policy(example_data())
    assert type(policy).model_validate_json(policy.model_dump_json()) == policy


def edit(path: str, value: Any) -> dict[str, Any]:
    """The example with the dotted ``path`` set to ``value`` (``None``: key removed)."""
    data = copy.deepcopy(example_data())
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("ack_timout", "10m", "ack_timout: unknown key"),
        ("people.alice.pager", "123", "people.alice.pager: unknown key"),
        ("escalation.levels.0.notifiy", ["bob"], "escalation.levels.0.notifiy: unknown key"),
        ("ack_timeout", "10 minutes", "ack_timeout: '10 minutes' is not a duration"),
        ("postmortem_within", "2x", "postmortem_within: '2x' is not a duration"),
        ("update_every", {"SEV-1": "soon"}, "update_every.SEV-1: 'soon' is not a duration"),
        ("escalation.levels.1", {"notify": ["bob"], "ack_timeout": "-1m"}, "escalation.levels.1.ack_timeout"),
        ("ack_timeout", "0s", "ack_timeout: must be longer than zero"),
        ("escalation.levels.1.notify", ["mallory"], "escalation.levels.1.notify.0: unknown person 'mallory'"),
        ("escalation.fallback", ["erin", "zed"], "escalation.fallback.1: unknown person 'zed'"),
        ("engineering_lead", "eric", "engineering_lead: unknown person 'eric'"),
        ("escalation.levels", [], "escalation.levels: List should have at least 1 item"),
        ("escalation.levels.0.notify", [], "escalation.levels.0.notify: List should have at least 1 item"),
        ("escalation", None, "escalation: missing"),
        ("people.bob", {"name": "Bob Ruiz"}, "people.bob: no contact method"),
        ("escalation.repeat", -1, "escalation.repeat"),
        ("update_every", {"SEV-7": "5m"}, "update_every.SEV-7"),
    ],
)
def test_a_bad_policy_names_the_key(path: str, value: Any, message: str) -> None:
    with pytest.raises(PolicyError, match="^team.yaml: .*") as err:
        parse_policy(edit(path, value), "team.yaml")
    assert message in str(err.value)


def test_unknown_person_message_lists_the_known_people() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(edit("engineering_lead", "eric"))
    assert "people are: alice, bob, erin" in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just\n- a list\n", "must be a mapping"),
        ("ack_timeout: [10m\n", "not valid YAML"),
        ("", "must be a mapping"),
    ],
)
def test_unusable_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="nope.yaml: cannot read the policy file"):
        load_policy(tmp_path / "nope.yaml")
