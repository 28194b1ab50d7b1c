"""Policies for the pure-rule tests: the example of issue 2, in minutes and hours."""

from __future__ import annotations

from typing import Any

import yaml

from warroom.models.policy import Policy, parse_policy

ISSUE_EXAMPLE_YAML = """\
ack_timeout: 10m
first_status_within: 5m
update_every: {SEV-1: 15m, SEV-2: 30m}
postmortem_required_for: [SEV-1, SEV-2]
postmortem_within: 48h
engineering_lead: erin
people:
  alice: {name: Alice Ng, sms: "+15005550006", email: alice@example.com}
  bob:   {name: Bob Ruiz, sms: "+15005550007", email: bob@example.com}
  erin:  {name: Erin Cho, sms: "+15005550008", email: erin@example.com}
escalation:
  levels:
    - notify: [alice]
    - notify: [bob]
  repeat: 1          # run the levels once more before giving up
  fallback: [erin]   # told when every level went unanswered
"""


def example_data(**overrides: Any) -> dict[str, Any]:
    """The issue's example as a fresh dict, with top-level keys replaced."""
    data = yaml.safe_load(ISSUE_EXAMPLE_YAML)
    data.update(overrides)
    return data


def example_policy(**overrides: Any) -> Policy:
    return parse_policy(example_data(**overrides), "example policy")
