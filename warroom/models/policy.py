"""The response policy: every duration and target of the lifecycle, as data.

The policy in force is copied into each incident when it is declared, so a
later edit never changes the rules of an incident already running, and a
workflow replay always sees the rules it ran with.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from warroom.models.durations import Duration
from warroom.models.severity import Severity


class PolicyError(Exception):
    """A policy file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Strict):
    name: str
    sms: str | None = None
    phone: str | None = None
    email: str | None = None


class EscalationLevel(_Strict):
    notify: list[str] = Field(min_length=1)
    ack_timeout: Duration | None = None
    """Overrides the policy's ``ack_timeout`` for this level."""


class Escalation(_Strict):
    levels: list[EscalationLevel] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=10)
    """How many more times the levels run after the first pass, before the fallback."""
    fallback: list[str] = Field(default_factory=list)
    """Told when every level went unanswered."""


SEVERITIES_PAGED = [Severity.SEV1, Severity.SEV2, Severity.SEV3]


class Policy(_Strict):
    ack_timeout: Duration = timedelta(minutes=10)
    first_status_within: Duration = timedelta(minutes=5)
    update_every: dict[Severity, Duration] = Field(
        default_factory=lambda: {Severity.SEV1: timedelta(minutes=15), Severity.SEV2: timedelta(minutes=30)}
    )
    reminder_lead: Duration = timedelta(minutes=2)
    """How long before a status deadline the reminder goes out (at most half the window)."""
    page_for: list[Severity] = Field(default_factory=lambda: list(SEVERITIES_PAGED))
    """Severities that page people; the others are recorded and tracked without waking anyone."""
    roles_required_for: list[Severity] = Field(default_factory=lambda: [Severity.SEV1, Severity.SEV2])
    commander_within: Duration = timedelta(minutes=5)
    """A SEV-1/2 without an Incident Commander this long after declaration gets a reminder."""
    role_reminder_every: Duration = timedelta(minutes=10)
    """With no Incident Commander on a SEV-1/2, how often to ask for one."""
    postmortem_required_for: list[Severity] = Field(default_factory=lambda: [Severity.SEV1, Severity.SEV2])
    postmortem_within: Duration = timedelta(hours=48)
    postmortem_reminders_before: list[Duration] = Field(
        default_factory=lambda: [timedelta(hours=24), timedelta(hours=4)]
    )
    postmortem_overdue_repeat: Duration = timedelta(hours=24)
    engineering_lead: str | None = None
    people: dict[str, Person] = Field(min_length=1)
    escalation: Escalation
    history_event_limit: int = Field(default=8000, ge=50)
    """Continue-as-new once an incident's history grows past this many events."""

    @model_validator(mode="after")
    def _check_references(self) -> "Policy":
        known = set(self.people)

        def check(where: str, who: str) -> None:
            if who not in known:
                raise ValueError(f"{where}: unknown person '{who}' (people are: {', '.join(sorted(known))})")

        for i, level in enumerate(self.escalation.levels):
            for j, who in enumerate(level.notify):
                check(f"escalation.levels.{i}.notify.{j}", who)
        for j, who in enumerate(self.escalation.fallback):
            check(f"escalation.fallback.{j}", who)
        if self.engineering_lead is not None:
            check("engineering_lead", self.engineering_lead)
        for key, person in self.people.items():
            if not (person.sms or person.phone or person.email):
                raise ValueError(f"people.{key}: no contact method (give sms, phone or email)")
        for sev, every in self.update_every.items():
            if every <= timedelta(0):
                raise ValueError(f"update_every.{sev.value}: must be longer than zero")
        for name in (
            "ack_timeout",
            "first_status_within",
            "postmortem_within",
            "commander_within",
            "role_reminder_every",
            "postmortem_overdue_repeat",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name}: must be longer than zero")
        return self

    def level_timeout(self, level_index: int) -> timedelta:
        level = self.escalation.levels[level_index]
        return level.ack_timeout or self.ack_timeout


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines)


def parse_policy(data: Any, source: str = "policy") -> Policy:
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the policy must be a mapping of keys to values")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {_format_errors(exc)}") from None


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML ({exc})") from None
    return parse_policy(data, str(path))


DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"
