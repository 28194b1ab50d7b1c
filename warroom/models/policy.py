"""The response policy: every duration and target of the lifecycle, as data.

The policy in force is copied into each incident when it is declared, so a
later edit never changes the rules of an incident already running, and a
workflow replay always sees the rules it ran with. The one exception is *who*
gets paged: when an escalation level falls due, its targets (people, on-call
schedules, teams) are resolved against the configuration in force at that
moment (see ``warroom.models.routing``), so someone taken off a rotation is no
longer paged for incidents still open.

Besides the flat ``people`` and ``escalation`` of the first version (still
valid on their own), a policy may describe what on-call teams actually run:
``teams`` with business hours, ``schedules`` of layered rotations with
overrides, named ``escalation_policies`` whose levels target ``alice``,
``schedule:NAME`` or ``team:NAME``, ``routes`` that pick the escalation policy
and team for an incident, and ``paging_rules`` by severity and time of day.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from warroom.models.durations import Duration
from warroom.models.oncall import Schedule, Window, zone
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
    time_zone: str | None = None
    """Where the person lives (an IANA name); shown next to their shifts."""
    slack: str | None = Field(default=None, pattern=r"^[UW][A-Z0-9]{2,20}$")
    """Their Slack member id (U...), for the incident channel and the /warroom command."""

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

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


SCHEDULE_PREFIX = "schedule:"
TEAM_PREFIX = "team:"


def target_kind(target: str) -> tuple[str, str]:
    """``("schedule", name)``, ``("team", name)`` or ``("person", id)`` for an escalation target."""
    if target.startswith(SCHEDULE_PREFIX):
        return "schedule", target[len(SCHEDULE_PREFIX):]
    if target.startswith(TEAM_PREFIX):
        return "team", target[len(TEAM_PREFIX):]
    return "person", target


class EscalationLevel(_Strict):
    notify: list[str] = Field(min_length=1)
    """Who this level pages: people (``alice``), whoever is on call (``schedule:NAME``)
    or every member of a team (``team:NAME``), resolved when the level falls due."""
    ack_timeout: Duration | None = None
    """Overrides the policy's ``ack_timeout`` for this level."""


class Escalation(_Strict):
    levels: list[EscalationLevel] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=10)
    """How many more times the levels run after the first pass, before the fallback."""
    fallback: list[str] = Field(default_factory=list)
    """Told when every level went unanswered (people, ``schedule:NAME`` or ``team:NAME``)."""


class Team(_Strict):
    name: str = ""
    members: list[str] = Field(default_factory=list)
    time_zone: str = "UTC"
    business_hours: list[Window] = Field(default_factory=lambda: [Window()])
    """Weekly windows in the team's zone; default Monday to Friday 09:00-17:00."""

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    def describe_hours(self) -> str:
        hours = "; ".join(w.describe() for w in self.business_hours) or "none"
        return f"{hours} {self.time_zone}"


class RouteMatch(_Strict):
    """Every field given must match; a list matches when any of its values does."""

    components: list[str] = Field(default_factory=list)
    """Any of the incident's components (case does not matter)."""
    severities: list[Severity] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    """Where the incident came from: api, alertmanager, grafana, ..."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Alert labels that must all be present with these values on one of the incident's alerts."""


class Route(_Strict):
    name: str = ""
    match: RouteMatch = Field(default_factory=RouteMatch)
    escalation: str = "default"
    """The escalation policy for incidents this rule matches."""
    team: str | None = None
    """The team that owns them (its business hours drive the paging rules)."""


class DefaultRoute(_Strict):
    escalation: str = "default"
    team: str | None = None


class PagingRule(_Strict):
    """How a severity pages at a time of day. The first rule that matches decides;
    with none, the severity pages with its ``page_methods`` at any hour."""

    severities: list[Severity] = Field(min_length=1)
    when: Literal["any_time", "business_hours", "outside_business_hours"] = "any_time"
    """Judged against the business hours of the incident's team (no team: always business hours)."""
    action: Literal["page", "defer", "none"] = "page"
    """``page`` now; ``defer`` the first page until the team's business hours start; ``none``: do not page."""
    methods: list[ContactMethod] | None = None
    """For ``page``: the methods that go out at once (default: the severity's ``page_methods``)."""

    @model_validator(mode="after")
    def _check(self) -> "PagingRule":
        if self.action == "defer" and self.when != "outside_business_hours":
            raise ValueError("action 'defer' waits for business hours: use it with when: outside_business_hours")
        if self.methods is not None and self.action != "page":
            raise ValueError(f"methods only apply to action 'page', not '{self.action}'")
        if self.methods is not None and (not self.methods or len(set(self.methods)) != len(self.methods)):
            raise ValueError("methods: give each of voice, sms, email at most once, and at least one")
        return self


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
    action_item_reminders_before: list[Duration] = Field(
        default_factory=lambda: [timedelta(hours=72), timedelta(hours=24)]
    )
    """When an action item's owner is reminded, counted back from its due date."""
    action_item_history_limit: int = Field(default=2000, ge=20)
    """An incident's action-item tracker continues as new past this many history events."""
    engineering_lead: str | None = None
    people: dict[str, Person] = Field(min_length=1)
    escalation: Escalation
    """The default escalation policy (also known as ``default``). May be left out when
    ``escalation_policies`` has one called ``default``."""
    escalation_policies: dict[str, Escalation] = Field(default_factory=dict)
    teams: dict[str, Team] = Field(default_factory=dict)
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    """Which escalation policy and team an incident gets; the first rule that matches wins."""
    default_route: DefaultRoute = Field(default_factory=DefaultRoute)
    """What an incident no rule matches gets."""
    paging_rules: list[PagingRule] = Field(default_factory=list)
    page_methods: dict[Severity, list[ContactMethod]] = Field(
        default_factory=lambda: {sev: list(methods) for sev, methods in DEFAULT_PAGE_METHODS.items()}
    )
    """Methods a page starts with, at once, per severity; a severity left out keeps its default."""
    page_cap: Duration = timedelta(minutes=1)
    """At most one page per phone number or address and method in this window; pages that
    fall due in between wait for the window and go out together in one message. 0 turns it off."""
    chat_retry_every: Duration = timedelta(minutes=1)
    """While Slack or a webhook receiver fails, how often the incident tries again without news."""
    page_retry_every: Duration = timedelta(minutes=5)
    """While an incident is unacknowledged, page again anyone every one of whose methods failed
    (a provider outage outlasting the send retries), this long after the last failure. 0 turns it off."""
    history_event_limit: int = Field(default=8000, ge=50)
    """Continue-as-new once an incident's history grows past this many events."""

    @model_validator(mode="before")
    @classmethod
    def _default_escalation(cls, data: Any) -> Any:
        """``escalation`` and ``escalation_policies.default`` name the same thing: either will do."""
        if not isinstance(data, dict):
            return data
        named = data.get("escalation_policies")
        default = named.get("default") if isinstance(named, dict) else None
        if data.get("escalation") is None:
            if default is None:
                raise ValueError(
                    "escalation: missing; give the default escalation policy as 'escalation' "
                    "or as 'escalation_policies.default'"
                )
            return {**data, "escalation": default}
        return data

    @model_validator(mode="after")
    def _check_references(self) -> "Policy":
        known = set(self.people)

        def check(where: str, who: str) -> None:
            if who not in known:
                raise ValueError(f"{where}: unknown person '{who}' (people are: {', '.join(sorted(known))})")

        def check_target(where: str, target: str) -> None:
            kind, name = target_kind(target)
            if kind == "schedule" and name not in self.schedules:
                listed = ", ".join(sorted(self.schedules)) or "none defined"
                raise ValueError(f"{where}: unknown schedule '{name}' (schedules are: {listed})")
            if kind == "team":
                if name not in self.teams:
                    raise ValueError(f"{where}: unknown team '{name}' (teams are: {', '.join(sorted(self.teams)) or 'none defined'})")
                if not self.teams[name].members:
                    raise ValueError(f"{where}: team '{name}' has no members to page")
            if kind == "person":
                check(where, name)

        for key in self.people:
            if ":" in key or not key.strip():
                raise ValueError(f"people.{key}: a person's id cannot contain ':' (it marks schedule: and team: targets)")
        named = self.escalation_policies.get("default")
        if named is not None and named != self.escalation:
            raise ValueError("escalation: differs from escalation_policies.default; give the default policy once")
        # The default policy is checked where it was written (escalation or escalation_policies.default).
        written = [] if named is not None else [("escalation", self.escalation)]
        for prefix, esc in written + [
            (f"escalation_policies.{name}", esc) for name, esc in self.escalation_policies.items()
        ]:
            for i, level in enumerate(esc.levels):
                for j, target in enumerate(level.notify):
                    check_target(f"{prefix}.levels.{i}.notify.{j}", target)
                if level.ack_timeout is not None and level.ack_timeout <= timedelta(0):
                    raise ValueError(f"{prefix}.levels.{i}.ack_timeout: must be longer than zero")
            for j, target in enumerate(esc.fallback):
                check_target(f"{prefix}.fallback.{j}", target)
        for name, team in self.teams.items():
            for j, who in enumerate(team.members):
                check(f"teams.{name}.members.{j}", who)
        for name, schedule in self.schedules.items():
            for i, layer in enumerate(schedule.layers):
                for j, who in enumerate(layer.participants):
                    check(f"schedules.{name}.layers.{i}.participants.{j}", who)
            for i, override in enumerate(schedule.overrides):
                check(f"schedules.{name}.overrides.{i}.person", override.person)
        policies = set(self.escalation_policies) | {"default"}
        for where, esc_name, team in [
            (f"routes.{i}", r.escalation, r.team) for i, r in enumerate(self.routes)
        ] + [("default_route", self.default_route.escalation, self.default_route.team)]:
            if esc_name not in policies:
                raise ValueError(
                    f"{where}.escalation: unknown escalation policy '{esc_name}' "
                    f"(escalation policies are: {', '.join(sorted(policies))})"
                )
            if team is not None and team not in self.teams:
                raise ValueError(f"{where}.team: unknown team '{team}' (teams are: {', '.join(sorted(self.teams)) or 'none defined'})")
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

    def escalation_for(self, name: str) -> Escalation | None:
        """The escalation policy called ``name`` (``default`` is ``escalation``)."""
        if name == "default":
            return self.escalation
        return self.escalation_policies.get(name)

    def level_timeout(self, level_index: int, escalation: str = "default") -> timedelta:
        esc = self.escalation_for(escalation) or self.escalation
        level = esc.levels[level_index]
        return level.ack_timeout or self.ack_timeout

    def pages_ever(self, severity: Severity) -> bool:
        """Whether this severity pages at some hour: listed in ``page_for`` and not
        switched off at every hour by the first paging rule that covers all hours."""
        if severity not in self.page_for:
            return False
        for rule in self.paging_rules:
            if severity not in rule.severities:
                continue
            if rule.action != "none":
                return True
            if rule.when == "any_time":
                return False
        return True


def format_errors(exc: ValidationError) -> str:
    """Pydantic's errors as 'key.path: reason; ...', for messages that name the bad key."""
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
        raise PolicyError(f"{source}: {format_errors(exc)}") from None


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
