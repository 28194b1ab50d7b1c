"""Detection: how an alert from any source becomes (part of) an incident.

Every source (Alertmanager, Grafana, the generic JSON webhook, a missed
heartbeat, a failing uptime check, a burst of customer reports) produces the
same shape, :class:`warroom.models.incident.AlertEvent`. Then, for all of them:

1. **Rules** (``alert_rules`` in the detection configuration): the first rule
   whose ``match`` fits the alert may set its component, severity and
   escalation policy, or say ``drop`` (keep only the raw delivery) or
   ``record`` (keep it in the alert log, declare nothing). See :func:`apply_rules`.
2. **Grouping**: alerts with the same group key (a dedup key, Alertmanager's
   or Grafana's ``groupKey``) join one open incident; an alert with a new key
   for a component that already has an incident opened or joined within
   ``grouping.component_window`` joins that one too. See :func:`group_hash`,
   :func:`component_hash` and :func:`joins_component_window`.

Everything here is a pure function of its arguments; times are passed in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from warroom.models.checks import CheckSpec
from warroom.models.durations import Duration
from warroom.models.incident import AlertEvent
from warroom.models.paging import mask_contacts_in
from warroom.models.policy import format_errors
from warroom.models.severity import Severity, most_severe, parse_severity, severity_from_labels

DEFAULT_DETECTION_PATH = Path(__file__).resolve().parent.parent / "policies" / "detection.yaml"
SOURCES = ("alertmanager", "grafana", "generic", "heartbeat", "uptime", "reports")
"""Where an alert can come from (rules match on these)."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def severity_word(text: str) -> Severity:
    """``SEV-2``, ``sev2``, ``2`` or a monitoring word (critical, major, warning, ...)."""
    word = text.strip().lower()
    if word in SEVERITY_WORDS:
        return severity_from_labels({"severity": word})
    return parse_severity(text)


SEVERITY_WORDS = ("critical", "major", "high", "error", "minor", "warning", "info", "low")


class DetectionError(Exception):
    """A detection configuration that cannot be used; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- rules -------------------------------------------------------------------------------------


class AlertMatch(_Strict):
    """Every field given must match (an empty match matches every alert)."""

    sources: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    """Each label must be present with this value; ``"*"`` means present with any value."""
    components: list[str] = Field(default_factory=list)
    """The alert's component as the source named it (case does not matter)."""

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in SOURCES]
        if unknown:
            raise ValueError(f"unknown source '{unknown[0]}': use {', '.join(SOURCES)}")
        return value


class AlertRule(_Strict):
    name: str = ""
    match: AlertMatch = Field(default_factory=AlertMatch)
    action: Literal["incident", "record", "drop"] = "incident"
    """``incident``: declare or join one; ``record``: keep in the alert log only; ``drop``: ignore."""
    component: str | None = Field(default=None, min_length=1, max_length=100)
    severity: Severity | None = None
    escalation: str | None = Field(default=None, min_length=1, max_length=100)
    """An escalation policy of the on-call configuration (``default`` is the policy's own)."""

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return severity_word(value) if isinstance(value, str) else value

    def label(self, index: int) -> str:
        return f"alert rule '{self.name}'" if self.name else f"alert rule {index + 1}"


class Grouping(_Strict):
    component_window: Duration = timedelta(minutes=10)
    """An alert for a component whose incident last took an alert this recently joins it
    (0s: group by key only)."""


# --- heartbeats, uptime checks, customer reports (their configuration) --------------------------


class Heartbeat(_Strict):
    name: str
    every: Duration
    """How often the job calls in."""
    grace: Duration = timedelta(0)
    """Extra slack before a late call counts as missed."""
    component: str | None = Field(default=None, max_length=100)
    severity: Severity = Severity.SEV2
    title: str = Field(default="", max_length=300)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use lower-case letters, digits, '-', '_' or '.' (at most 63)")
        return value

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return severity_word(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _positive(self) -> "Heartbeat":
        if self.every <= timedelta(0):
            raise ValueError("every: give a positive duration such as '5m'")
        return self

    @property
    def deadline(self) -> timedelta:
        return self.every + self.grace


class ReportSurge(_Strict):
    count: int = Field(default=5, ge=1, le=10000)
    """This many customer reports for one component ..."""
    within: Duration = timedelta(minutes=10)
    """... within this long raise an alert."""
    severity: Severity = Severity.SEV3

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return severity_word(value) if isinstance(value, str) else value


class DetectionConfig(_Strict):
    alert_rules: list[AlertRule] = Field(default_factory=list)
    grouping: Grouping = Field(default_factory=Grouping)
    heartbeats: list[Heartbeat] = Field(default_factory=list)
    reports: ReportSurge = Field(default_factory=ReportSurge)
    checks: list[CheckSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "DetectionConfig":
        for what, names in (("heartbeat", [h.name for h in self.heartbeats]), ("check", [c.name for c in self.checks])):
            dup = next((n for n in names if names.count(n) > 1), None)
            if dup:
                raise ValueError(f"{what} '{dup}' is defined twice")
        return self

    def heartbeat(self, name: str) -> Heartbeat | None:
        return next((h for h in self.heartbeats if h.name == name), None)


def parse_detection(data: Any, source: str = "detection configuration") -> DetectionConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DetectionError(f"{source}: expected a mapping of keys to values")
    try:
        return DetectionConfig.model_validate(data)
    except ValidationError as exc:
        raise DetectionError(f"{source}: {format_errors(exc)}") from None


def load_detection(path: str | Path) -> DetectionConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DetectionError(f"{path}: cannot read the detection configuration ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DetectionError(f"{path}: not valid YAML ({exc})") from None
    return parse_detection(data, str(path))


# --- applying the rules --------------------------------------------------------------------------


class Routed(BaseModel):
    """One alert after the rules: what to do with it, with its component and severity settled."""

    alert: AlertEvent
    action: Literal["incident", "record", "drop"] = "incident"
    severity: Severity
    component: str | None = None
    escalation: str | None = None
    rule: str | None = None
    """Which rule decided (None: no rule matched)."""


def component_of(alert: AlertEvent) -> str | None:
    name = (alert.component or alert.labels.get("component") or "").strip()
    return name or None


def _matches(match: AlertMatch, alert: AlertEvent) -> bool:
    if match.sources and alert.source not in match.sources:
        return False
    for key, wanted in match.labels.items():
        have = alert.labels.get(key)
        if have is None or (wanted != "*" and have != wanted):
            return False
    if match.components:
        component = (component_of(alert) or "").lower()
        if component not in {c.strip().lower() for c in match.components}:
            return False
    return True


def apply_rules(rules: Sequence[AlertRule], alert: AlertEvent) -> Routed:
    """The first matching rule decides; without one the alert declares or joins an incident
    with the component and severity its source gave (severity: SEV-3 when it gave none)."""
    severity = alert.severity or severity_from_labels(alert.labels)
    for i, rule in enumerate(rules):
        if not _matches(rule.match, alert):
            continue
        return Routed(
            alert=alert,
            action=rule.action,
            severity=rule.severity or severity,
            component=rule.component or component_of(alert),
            escalation=rule.escalation,
            rule=rule.label(i),
        )
    return Routed(alert=alert, severity=severity, component=component_of(alert))


# --- grouping --------------------------------------------------------------------------------------


def group_hash(source: str, key: str, receiver: str = "") -> str:
    """The row that maps an alert group to its open incident. Alertmanager's keeps the
    formula of the first version (receiver and groupKey), so groups open before an upgrade
    still find their incidents."""
    return hashlib.sha256(f"{source}\x00{receiver}\x00{key}".encode()).hexdigest()


def component_hash(component: str) -> str:
    return hashlib.sha256(f"component\x00{component.strip().lower()}".encode()).hexdigest()


def joins_component_window(last_alert_at: datetime | None, now: datetime, window: timedelta) -> bool:
    """Whether an alert at ``now`` joins the incident of a component that last took an
    alert at ``last_alert_at``: within ``window`` (inclusive), never with a zero window."""
    if last_alert_at is None or window <= timedelta(0):
        return False
    return timedelta(0) <= now - last_alert_at <= window


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def partition(routed: Sequence[Routed], group_key: str) -> dict[str, list[Routed]]:
    """Alerts that declare or join incidents, by group key: a dedup key wins over the
    delivery's own group key (a Grafana batch may carry several causes)."""
    out: dict[str, list[Routed]] = {}
    for r in routed:
        if r.action != "incident":
            continue
        out.setdefault(r.alert.dedup_key or group_key, []).append(r)
    return out


def declaration(group: Sequence[Routed]) -> dict[str, Any]:
    """Title, severity, components, summary and impact start of the incident a group
    opens, and the escalation policy a rule chose (the most severe alert's)."""
    firing = [r for r in group if r.alert.status == "firing"] or list(group)
    severity = most_severe(*(r.severity for r in firing))
    lead = next(r for r in firing if r.severity == severity)
    first = firing[0].alert
    title = first.summary or first.name or "alert"
    description = first.description
    starts = [r.alert.starts_at for r in firing if r.alert.starts_at is not None]
    components = list(dict.fromkeys(r.component for r in firing if r.component))
    summary = f"{first.name}: {description}" if description and first.name else (description or first.name or title)
    return {
        "title": title[:300],
        "severity": severity,
        "summary": summary[:5000],
        "components": components,
        "impact_started_at": min(starts) if starts else None,
        "escalation": lead.escalation,
        "escalation_rule": lead.rule,
    }


def with_rule_changes(r: Routed) -> AlertEvent:
    """The alert as the incident records it: the component and severity the rules gave."""
    labels: Mapping[str, str] = r.alert.labels
    return r.alert.model_copy(update={"component": r.component, "severity": r.severity, "labels": dict(labels)})


# --- what the intake answers, and alerts raised inside the worker -------------------------------------


class IngestOutcome(BaseModel):
    incident_id: int | None = None
    action: str = "ignored"
    """declared | joined | recorded | ignored | held | dropped"""
    new_alerts: int = 0
    held_alerts: int = 0
    incidents: list[int] = Field(default_factory=list)
    """Every incident the delivery declared or joined (a batch may carry several dedup keys)."""


class RaiseAlertInput(BaseModel):
    """An alert from a source that runs in the worker (a heartbeat, an uptime check, reports)."""

    alert: AlertEvent
    group_key: str


# --- heartbeats ----------------------------------------------------------------------------------------


class HeartbeatInput(BaseModel):
    """One heartbeat monitor as its workflow runs it (from the configuration at the last call)."""

    name: str
    deadline_seconds: float
    """every + grace: a call missing this long raises the alert."""
    component: str | None = None
    severity: Severity = Severity.SEV2
    title: str = ""
    last_ping: datetime | None = None
    """Carried over continue-as-new."""
    alerting_since: datetime | None = None
    """Carried over continue-as-new: the missed deadline whose alert is firing."""

    @classmethod
    def of(cls, hb: Heartbeat) -> "HeartbeatInput":
        return cls(name=hb.name, deadline_seconds=hb.deadline.total_seconds(), component=hb.component,
                   severity=hb.severity, title=hb.title)


class Ping(BaseModel):
    at: datetime
    monitor: HeartbeatInput
    """The monitor as configured when the call came (a changed ``every`` applies from then on)."""


def heartbeat_alert(monitor: HeartbeatInput, status: str, missed_at: datetime, last_ping: datetime | None) -> AlertEvent:
    """The alert of one missed heartbeat; each miss is a new firing (its start is the missed
    deadline), and the next call resolves it."""
    since = f"; last call {last_ping.isoformat(timespec='seconds')}" if last_ping else ""
    title = monitor.title or f"Heartbeat '{monitor.name}' missed"
    return AlertEvent(
        source="heartbeat",
        fingerprint=fingerprint("heartbeat", monitor.name),
        status=status,
        name=title,
        summary=title,
        description=f"no call within {monitor.deadline_seconds:g} s{since}",
        labels={"heartbeat": monitor.name},
        starts_at=missed_at,
        severity=monitor.severity,
        component=monitor.component,
        dedup_key=f"heartbeat:{monitor.name}",
    )


# --- customer reports --------------------------------------------------------------------------------

REPORT_MAX_TEXT = 2000
REPORT_MAX_CONTACT = 200
_TAG = re.compile(r"<[^>]*>?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters, and the bidirectional ones that can make a report read other than it is
written (right-to-left overrides, embeddings and isolates, the direction marks)."""


def plain_text(text: str) -> str:
    """A customer's words with any markup taken out: tags removed, stray angle brackets
    dropped, control and direction-override characters gone. What is left is shown as text,
    never as HTML."""
    text = _CONTROL.sub("", text)
    text = _TAG.sub("", text)
    return text.replace("<", "").replace(">", "").strip()


def surge_crossed(count_in_window: int, threshold: int) -> bool:
    """True for the report that makes ``threshold`` within the window: the alert is raised
    once per burst, not once per report after it."""
    return count_in_window == threshold


def report_alert(component: str, count: int, within: timedelta, severity: Severity, first_at: datetime) -> AlertEvent:
    minutes = within.total_seconds() / 60
    title = f"{component}: {count} customer reports within {minutes:g} minutes"
    return AlertEvent(
        source="reports",
        fingerprint=fingerprint("reports", component.lower()),
        status="firing",
        name=title,
        summary=title,
        description="Customers are reporting problems on the status page; see the triage list.",
        labels={"component": component},
        starts_at=first_at,
        severity=severity,
        component=component,
        dedup_key=f"reports:{component.lower()}",
    )


def report_event(report_id: int, component: str | None, text: str, severity: Severity | None,
                 at: datetime) -> AlertEvent:
    """One customer report as an alert: to attach it to an incident or declare one from it.

    Customers write their phone numbers and addresses into reports; what becomes an
    incident's title and timeline (public on the status page, sent in pages) carries them
    masked. The report itself, with its contact, stays on the triage list for responders."""
    text = mask_contacts_in(text)
    first_line = text.splitlines()[0] if text else "customer report"
    return AlertEvent(
        source="reports",
        fingerprint=f"report-{report_id}",
        status="firing",
        name=f"Customer report #{report_id}",
        summary=f"Customer report #{report_id}: {first_line[:200]}",
        description=text[:REPORT_MAX_TEXT],
        starts_at=at,
        severity=severity,
        component=component,
        dedup_key=f"report-{report_id}",
    )
