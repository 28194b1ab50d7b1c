"""Workflow payloads and the live state of one incident.

These types travel through Temporal histories: a field added later must have a
default so that recorded histories still decode. API request/response schemas
live in ``warroom.api.schemas`` and are kept separate on purpose.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from warroom.models.policy import Person, Policy
from warroom.models.severity import Severity


class Role(StrEnum):
    INCIDENT_COMMANDER = "incident_commander"
    TECHNICAL_LEAD = "technical_lead"
    COMMUNICATIONS_LEAD = "communications_lead"
    SCRIBE = "scribe"

    @property
    def title(self) -> str:
        return self.value.replace("_", " ").title()


class IncidentStatus(StrEnum):
    TRIGGERED = "triggered"
    """Declared; nobody has acknowledged yet."""
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    """Service restored; a postmortem may still be due."""
    CLOSED = "closed"
    """Nothing left to do: postmortem submitted or not required."""


class NotificationKind(StrEnum):
    PAGE = "page"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    FALLBACK = "fallback"
    STATUS = "status"
    RESOLUTION = "resolution"
    POSTMORTEM = "postmortem"
    ROLE = "role"


class StatusKind(StrEnum):
    UPDATE = "update"
    AUTO_INITIAL = "auto_initial"
    RESOLUTION = "resolution"


class AlertEvent(BaseModel):
    """One alert as a monitoring source reported it."""

    source: str = "alertmanager"
    fingerprint: str
    status: str = "firing"
    name: str = ""
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class AlertBatch(BaseModel):
    group_key: str
    alerts: list[AlertEvent]


class AlertBatchResult(BaseModel):
    number: int
    accepted: bool
    """False when the incident was already resolved: the caller must open a new one."""
    new_alerts: int = 0
    first_batch: bool = False
    """True for the batch that opened the incident."""


class IncidentInput(BaseModel):
    number: int
    title: str
    severity: Severity
    summary: str = ""
    components: list[str] = Field(default_factory=list)
    impact_started_at: datetime | None = None
    detected_at: datetime | None = None
    declared_by: str = "api"
    source: str = "api"
    group_key: str | None = None
    policy: Policy
    alerts: list[AlertEvent] = Field(default_factory=list)
    carried: "IncidentState | None" = None
    """Set only when the workflow continues as new."""


class TimelineEntry(BaseModel):
    seq: int
    at: datetime
    kind: str
    text: str
    actor: str | None = None


class StatusUpdate(BaseModel):
    seq: int
    at: datetime
    kind: StatusKind = StatusKind.UPDATE
    author: str
    message: str


class PageRecord(BaseModel):
    step: int
    level: int
    round: int
    person: str
    at: datetime


class EscalationState(BaseModel):
    step: int = -1
    """Index into the escalation plan of the last step paged (-1: none yet)."""
    deadline: datetime | None = None
    exhausted: bool = False
    fallback_notified_at: datetime | None = None


class AlertRecord(BaseModel):
    fingerprint: str
    name: str = ""
    status: str = "firing"
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    starts_at: datetime | None = None
    seen_keys: list[str] = Field(default_factory=list)


class ActionItem(BaseModel):
    title: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    due: datetime


class PostmortemDocument(BaseModel):
    summary: str = ""
    timeline: str = ""
    root_cause: str = ""
    impact: str = ""
    what_went_well: str = ""
    what_could_improve: str = ""
    action_items: list[ActionItem] = Field(default_factory=list)


class PostmortemState(BaseModel):
    required: bool = False
    deadline: datetime | None = None
    reminders_sent: int = 0
    overdue_notified: int = 0
    submitted_at: datetime | None = None
    submitted_by: str | None = None
    document: PostmortemDocument | None = None


class StatusPlan(BaseModel):
    first_deadline: datetime
    first_reminded: bool = False
    first_posted_at: datetime | None = None
    next_due: datetime | None = None
    reminded_for: datetime | None = None
    overdue_for: datetime | None = None


class IncidentState(BaseModel):
    number: int
    title: str
    summary: str = ""
    severity: Severity
    max_severity: Severity
    status: IncidentStatus = IncidentStatus.TRIGGERED
    components: list[str] = Field(default_factory=list)
    source: str = "api"
    group_key: str | None = None
    declared_by: str = "api"
    declared_at: datetime
    detected_at: datetime | None = None
    impact_started_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_summary: str | None = None
    roles: dict[Role, str] = Field(default_factory=dict)
    escalation: EscalationState = Field(default_factory=EscalationState)
    pages: list[PageRecord] = Field(default_factory=list)
    status_plan: StatusPlan
    status_updates: list[StatusUpdate] = Field(default_factory=list)
    ic_reminder_at: datetime | None = None
    postmortem: PostmortemState = Field(default_factory=PostmortemState)
    alerts: list[AlertRecord] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    version: int = 0
    """Bumped on every change; the read model keeps only the newest version."""
    command_results: dict[str, CommandResult] = Field(default_factory=dict)
    """Answers to the latest commands by update id, carried across continue-as-new."""


class Deadline(BaseModel):
    name: str
    at: datetime


class IncidentView(BaseModel):
    """What the live-state query returns: the state plus the deadlines ahead."""

    state: IncidentState
    deadlines: list[Deadline] = Field(default_factory=list)


# --- commands (Temporal updates) -------------------------------------------------


class AckInput(BaseModel):
    person: str
    via: str = "api"


class EscalateInput(BaseModel):
    by: str
    via: str = "api"
    from_step: int | None = None
    """The step the caller saw; if the incident has already moved past it, nothing happens."""


class StatusUpdateInput(BaseModel):
    message: str
    author: str


class RoleInput(BaseModel):
    role: Role
    person: str
    by: str = "api"


class SeverityInput(BaseModel):
    severity: Severity
    by: str = "api"
    reason: str = ""


class ResolveInput(BaseModel):
    summary: str
    by: str = "api"
    impact: str = ""


class PostmortemInput(BaseModel):
    document: PostmortemDocument
    by: str = "api"


class CommandResult(BaseModel):
    number: int
    status: IncidentStatus
    message: str


# --- activities ------------------------------------------------------------------


class NotificationRequest(BaseModel):
    key: str
    """Idempotency key derived by the workflow; one delivery per key, ever."""
    incident_number: int
    person_id: str
    person: Person
    channel: str
    kind: NotificationKind
    subject: str
    text: str


class NotificationResult(BaseModel):
    key: str
    status: str
    """sent | failed | duplicate | unconfirmed"""
    provider: str
    detail: str = ""


class PersistInput(BaseModel):
    state: IncidentState
    timeline: list[TimelineEntry] = Field(default_factory=list)
    status_updates: list[StatusUpdate] = Field(default_factory=list)
    release_group: bool = False
    """True once resolved: the alert group may open a new incident."""


IncidentState.model_rebuild()
IncidentInput.model_rebuild()
