"""Request and response bodies of the REST API.

Kept apart from the workflow payloads on purpose: those are frozen by recorded
histories, these may evolve with the API's own versioning.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from warroom.models.incident import (
    ActionItem,
    IncidentState,
    IncidentView,
    PublicPhase,
    Role,
)
from warroom.models.severity import Severity, parse_severity

TEXT = 5000
ACTOR = "Who acts: always the caller. Leave it out; if given, it must be the caller's user id (else 403)."


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store U+0000 in text; refuse it here, not in an activity later.
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise ValueError("must not contain NUL characters (U+0000)")
        return value


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def check_instant(value: datetime) -> datetime:
    """Refuse an aware instant that the read model cannot store (it keeps UTC).

    Year 1 with a positive offset, or year 9999 with a negative one, has no UTC
    equivalent; stored, it made the persist activity fail on every retry.
    """
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("this instant cannot be expressed in UTC") from None
    if in_utc < EARLIEST:
        raise ValueError("must be after 1970-01-01T00:00:00Z")
    return value


def _severity(value: Any) -> Any:
    return parse_severity(value) if isinstance(value, str) else value


class DeclareIn(_In):
    title: str = Field(min_length=1, max_length=300)
    severity: Severity
    summary: str = Field(default="", max_length=TEXT)
    components: list[str] = Field(default_factory=list, max_length=50)
    impact_started_at: datetime | None = None
    declared_by: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)

    _sev = field_validator("severity", mode="before")(_severity)

    @field_validator("impact_started_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-11-30T02:41:07Z")
        return check_instant(value) if value is not None else None

    @field_validator("components")
    @classmethod
    def _components(cls, value: list[str]) -> list[str]:
        cleaned = [c.strip() for c in value]
        if any(not c or len(c) > 100 for c in cleaned):
            raise ValueError("each component needs a name of 1 to 100 characters")
        return list(dict.fromkeys(cleaned))


class AckIn(_In):
    person: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)


class EscalateIn(_In):
    person: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)


PHASES = ", ".join(p.value for p in PublicPhase)


class StatusUpdateIn(_In):
    message: str = Field(min_length=1, max_length=TEXT)
    author: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)
    phase: PublicPhase | None = Field(
        default=None,
        description=f"Where the incident stands for the public: {PHASES}. Leave it out to keep the current "
        "phase; moving back (monitoring to investigating) is allowed. Resolving is its own command.",
    )

    @field_validator("phase", mode="before")
    @classmethod
    def _phase(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        cleaned = value.strip().lower()
        if cleaned == "resolved":
            raise ValueError("an update does not resolve the incident: use POST /api/incidents/{id}/resolve")
        if cleaned not in {p.value for p in PublicPhase}:
            raise ValueError(f"unknown phase '{value}': use {PHASES}, or leave it out to keep the current one")
        return cleaned


class RoleIn(_In):
    role: Role
    person: str = Field(min_length=1, max_length=100)
    by: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: Any) -> Any:
        if isinstance(value, str):
            aliases = {
                "ic": "incident_commander",
                "commander": "incident_commander",
                "tech_lead": "technical_lead",
                "tl": "technical_lead",
                "comms": "communications_lead",
                "comms_lead": "communications_lead",
                "cl": "communications_lead",
            }
            key = value.strip().lower().replace(" ", "_").replace("-", "_")
            return aliases.get(key, key)
        return value


class SeverityIn(_In):
    severity: Severity
    by: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)
    reason: str = Field(default="", max_length=TEXT)

    _sev = field_validator("severity", mode="before")(_severity)


class ResolveIn(_In):
    summary: str = Field(min_length=1, max_length=TEXT)
    impact: str = Field(default="", max_length=TEXT)
    by: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)


class ActionItemIn(_In):
    title: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=100)
    due: datetime
    priority: str = Field(default="medium", pattern="^(high|medium|low)$")

    @field_validator("due")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-12-10T17:00:00Z")
        return value


class PostmortemIn(_In):
    """Sections may be empty here: the workflow names every missing one in a 409."""

    summary: str = Field(default="", max_length=20000)
    timeline: str = Field(default="", max_length=50000)
    root_cause: str = Field(default="", max_length=20000)
    impact: str = Field(default="", max_length=20000)
    what_went_well: str = Field(default="", max_length=20000)
    what_could_improve: str = Field(default="", max_length=20000)
    action_items: list[ActionItemIn] = Field(default_factory=list, max_length=100)
    by: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)

    def items(self) -> list[ActionItem]:
        return [ActionItem(title=i.title, owner=i.owner, due=i.due, priority=i.priority) for i in self.action_items]


class CommandOut(BaseModel):
    incident_id: int
    status: str
    message: str


class IncidentSummaryOut(BaseModel):
    id: int
    title: str
    severity: str
    status: str
    source: str
    components: list[str]
    declared_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None


class IncidentOut(BaseModel):
    id: int
    title: str
    summary: str
    severity: str
    status: str
    source: str
    components: list[str]
    declared_by: str
    declared_at: datetime
    detected_at: datetime | None
    impact_started_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolution_summary: str | None
    roles: dict[str, str]
    deadlines: dict[str, datetime]
    pages: list[dict[str, Any]]
    escalation: dict[str, Any]
    status_updates: list[dict[str, Any]]
    public_phase: str
    """What the status page says of the incident while it is open (investigating, identified, monitoring)."""
    alerts: list[dict[str, Any]]
    postmortem: dict[str, Any]
    timeline: list[dict[str, Any]]
    workflow_id: str
    temporal_ui: str | None = None

    @classmethod
    def from_state(
        cls, state: IncidentState, deadlines: dict[str, datetime], workflow_id: str, ui: str | None
    ) -> "IncidentOut":
        return cls(
            id=state.number,
            title=state.title,
            summary=state.summary,
            severity=state.severity.value,
            status=state.status.value,
            source=state.source,
            components=state.components,
            declared_by=state.declared_by,
            declared_at=state.declared_at,
            detected_at=state.detected_at,
            impact_started_at=state.impact_started_at,
            acknowledged_at=state.acknowledged_at,
            acknowledged_by=state.acknowledged_by,
            resolved_at=state.resolved_at,
            resolution_summary=state.resolution_summary,
            roles={r.value: p for r, p in state.roles.items()},
            deadlines=deadlines,
            pages=[p.model_dump(mode="json") for p in state.pages],
            escalation=state.escalation.model_dump(mode="json"),
            status_updates=[u.model_dump(mode="json") for u in state.status_updates],
            public_phase=state.public_phase.value,
            alerts=[a.model_dump(mode="json", exclude={"seen_keys"}) for a in state.alerts],
            postmortem=state.postmortem.model_dump(mode="json"),
            timeline=[e.model_dump(mode="json") for e in state.timeline],
            workflow_id=workflow_id,
            temporal_ui=ui,
        )

    @classmethod
    def from_view(cls, view: IncidentView, workflow_id: str, ui: str | None) -> "IncidentOut":
        return cls.from_state(view.state, {d.name: d.at for d in view.deadlines}, workflow_id, ui)


class NotificationOut(BaseModel):
    key: str
    incident_id: int
    person: str
    channel: str
    provider: str
    kind: str
    subject: str
    text: str
    status: str
    detail: str
    created_at: datetime
    sent_at: datetime | None


class AlertIngestOut(BaseModel):
    incident_id: int | None
    action: str
    """declared | joined | recorded | ignored | held (every firing alert is for a component under maintenance)
    | dropped (an alert rule said so)"""
    new_alerts: int = 0
    held_alerts: int = 0
    """Firing alerts recorded without paging: their component is under planned maintenance."""
