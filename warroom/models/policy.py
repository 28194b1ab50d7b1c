"""The response policy: every duration and target of the lifecycle, as data.

The policy in force is copied into each incident when it is declared, so a
later edit never changes the rules of an incident already running, and a
workflow replay always sees the rules it ran with.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
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


class ContactMethod(StrEnum):
    VOICE = "voice"
    SMS = "sms"
    EMAIL = "email"


DEFAULT_CONTACT_ORDER = (ContactMethod.VOICE, ContactMethod.SMS, ContactMethod.EMAIL)
"""A person without ``contact_order`` is tried loudest first: a call, then SMS, then email."""

_METHOD_FIELD = {ContactMethod.VOICE: "phone", ContactMethod.SMS: "sms", ContactMethod.EMAIL: "email"}


class Person(_Strict):
    name: str
    sms: str | None = None
    phone: str | None = None
    email: str | None = None
    contact_order: list[ContactMethod] | None = None
    """The order in which to try this person's methods; default: voice, sms, email (those given)."""

    @model_validator(mode="after")
    def _check_order(self) -> "Person":
        if self.contact_order is None:
            return self
        if len(set(self.contact_order)) != len(self.contact_order):
            raise ValueError("contact_order: a method is listed twice")
        for method in self.contact_order:
            if getattr(self, _METHOD_FIELD[method]) is None:
                raise ValueError(f"contact_order: '{method.value}' needs '{_METHOD_FIELD[method]}' to be set")
        return self

    def contact(self, method: ContactMethod | str) -> str | None:
        """The phone number or address for ``method`` (None when the person has none)."""
        try:
            field = _METHOD_FIELD[ContactMethod(method)]
        except ValueError:
            return None
        return getattr(self, field)

    def methods(self) -> list[ContactMethod]:
        """Every method this person can be reached by, in their order of preference.

        Methods the person has but left out of ``contact_order`` come last, so a
        page can always fall back to them rather than go silent."""
        given = [m for m in DEFAULT_CONTACT_ORDER if self.contact(m)]
        order = [m for m in (self.contact_order or []) if m in given]
        return order + [m for m in given if m not in order]


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

DEFAULT_PAGE_METHODS: dict[Severity, list[ContactMethod]] = {
    Severity.SEV1: [ContactMethod.VOICE, ContactMethod.SMS],
    Severity.SEV2: [ContactMethod.SMS],
    Severity.SEV3: [ContactMethod.EMAIL],
    Severity.SEV4: [ContactMethod.EMAIL],
}
"""Which methods a page starts with, at once, per severity: a SEV-1 rings the phone and
texts; a SEV-2 texts; a SEV-3 (and a SEV-4, if a policy pages for it) mails. A method
that fails falls back to the person's next one whatever the severity."""


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
    page_methods: dict[Severity, list[ContactMethod]] = Field(
        default_factory=lambda: {sev: list(methods) for sev, methods in DEFAULT_PAGE_METHODS.items()}
    )
    """Methods a page starts with, at once, per severity; a severity left out keeps its default."""
    page_cap: Duration = timedelta(minutes=1)
    """At most one page per phone number or address and method in this window; pages that
    fall due in between wait for the window and go out together in one message. 0 turns it off."""
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
        for sev, methods in self.page_methods.items():
            if not methods:
                raise ValueError(f"page_methods.{sev.value}: give at least one of voice, sms, email")
            if len(set(methods)) != len(methods):
                raise ValueError(f"page_methods.{sev.value}: a method is listed twice")
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

    def methods_for(self, severity: Severity) -> list[ContactMethod]:
        return self.page_methods.get(severity) or DEFAULT_PAGE_METHODS[severity]

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
