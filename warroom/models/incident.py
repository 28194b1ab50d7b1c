"""Workflow payloads and the live state of one incident.

These types travel through Temporal histories: a field added later must have a
default so that recorded histories still decode. API request/response schemas
live in ``warroom.api.schemas`` and are kept separate on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from warroom.models.components import ComponentImpact
from warroom.models.policy import Person, Policy
from warroom.models.routing import RouteChoice
from warroom.models.runbook import RunbookRunRef
from warroom.models.severity import Severity
from warroom.models.subscribers import PublicEvent


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


class PublicPhase(StrEnum):
    """Where an open incident stands, as the status page tells the public.

    The incident statuses of Atlassian Statuspage before "resolved". Responders
    set the phase with a status update; it may move back (monitoring, then
    investigating again when the fix did not hold)."""

    INVESTIGATING = "investigating"
    """The cause is not known yet."""
    IDENTIFIED = "identified"
    """The cause is known and a fix is being worked on."""
    MONITORING = "monitoring"
    """A fix is in place; the team watches that it holds."""

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def meaning(self) -> str:
        """What the phase means, in a customer's words."""
        return _PHASE_MEANINGS[self]

    @property
    def rank(self) -> int:
        return list(PublicPhase).index(self)


_PHASE_MEANINGS = {
    PublicPhase.INVESTIGATING: "We are looking into the problem.",
    PublicPhase.IDENTIFIED: "We have found the cause and are working on a fix.",
    PublicPhase.MONITORING: "A fix is in place and we are making sure it holds.",
}


def phases_in_force(phases: Iterable[PublicPhase | str | None]) -> list[PublicPhase]:
    """The phase each status update showed, oldest first: its own, or (None: the update
    kept the phase) the one in force before it; investigating until an update sets one."""
    current, shown = PublicPhase.INVESTIGATING, []
    for phase in phases:
        if phase is not None:
            current = PublicPhase(phase)
        shown.append(current)
    return shown


def current_phase(phases: Iterable[PublicPhase | str | None]) -> PublicPhase:
    """The incident's phase now: that of its latest update that set one (oldest first in)."""
    shown = phases_in_force(phases)
    return shown[-1] if shown else PublicPhase.INVESTIGATING


def entered_monitoring_at(updates: Iterable[tuple[datetime, PublicPhase | str | None]]) -> datetime | None:
    """When the incident last went into monitoring ((time, phase) of each update, oldest
    first); None if it never did. A later move back does not erase it: the status page
    keeps it the way Statuspage keeps ``monitoring_at``."""
    pairs = list(updates)
    entered, before = None, PublicPhase.INVESTIGATING
    for (at, _), shown in zip(pairs, phases_in_force(p for _, p in pairs), strict=True):
        if shown == PublicPhase.MONITORING and before != PublicPhase.MONITORING:
            entered = at
        before = shown
    return entered


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
    # The fields below came with the Grafana and generic sources (warroom.models.detection).
    description: str = ""
    severity: Severity | None = None
    """The severity the source gave, or the one a routing rule set."""
    component: str | None = None
    dedup_key: str | None = None
    """Alerts with the same key join one open incident."""
    links: list[str] = Field(default_factory=list)


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
    escalation: str | None = None
    """The escalation policy an alert rule chose (None: the policy's routes decide)."""
    escalation_rule: str | None = None
    """Which alert rule chose it, for the timeline."""
    carried: "IncidentState | None" = None
    relay: list[str] = Field(default_factory=list)
    """Where to mirror the incident (``slack``, ``webhooks``): the API sets it from its settings."""
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
    phase: PublicPhase | None = None
    """The public phase this update put the incident in; None: it kept the one in force
    (every update recorded before phases existed, and every resolution notice)."""


class RelayTarget(BaseModel):
    """How far the incident has been mirrored to one chat target (see workflows.relay)."""

    seq: int = 0
    """The last timeline entry the target has."""
    view: str = ""
    """The status summary it last showed."""
    failing: bool = False
    tried_seq: int = 0
    tried_view: str = ""
    """What the last failed attempt tried to send: the next try waits for news or the retry timer."""
    off: bool = False
    """The worker says this target is not configured: nothing more is sent."""


class RelayState(BaseModel):
    targets: dict[str, RelayTarget] = Field(default_factory=dict)
    noted: list[str] = Field(default_factory=list)
    """Chat messages already copied to the timeline (``channel/ts``): a redelivered event acts once."""


class PageRecord(BaseModel):
    step: int
    level: int
    round: int
    person: str
    at: datetime
    via: str | None = None
    """The level's target that brought the person in (``schedule:NAME``, ``team:NAME``, a person)."""


class DeliveryAttempt(BaseModel):
    """One try at reaching one person by one method for one page."""

    key: str
    method: str
    attempt: int
    status: str = "sending"
    """sending | sent | delivered | failed | withdrawn"""
    detail: str = ""
    at: datetime


class PageRun(BaseModel):
    """Paging one person for one escalation step: the methods tried and how each went."""

    slot: str
    """``step-<n>`` for an escalation step, ``fallback`` for the fallback people."""
    step: int
    person: str
    kind: NotificationKind
    methods: list[str]
    """Every method of the person in the order tried; the first ``at_once`` start together."""
    at_once: int = 1
    subject: str
    text: str
    attempts: list[DeliveryAttempt] = Field(default_factory=list)
    unreachable: bool = False
    """Every method failed."""
    round_start: int = 0
    """Index in ``attempts`` where the current round of methods began (a retry starts a new one)."""
    retry_at: datetime | None = None
    """When to try every method again while the incident is unacknowledged (see page_retry_every)."""


class EscalationState(BaseModel):
    step: int = -1
    """Index into the escalation plan of the last step paged (-1: none yet)."""
    deadline: datetime | None = None
    exhausted: bool = False
    fallback_notified_at: datetime | None = None
    resolving: bool = False
    """A level's targets are being resolved against the current configuration."""
    deferred_until: datetime | None = None
    """The first page waits for the team's business hours (a paging rule said so)."""
    paging_off: bool = False
    """A paging rule said this severity pages nobody at this hour."""


class AlertRecord(BaseModel):
    fingerprint: str
    name: str = ""
    status: str = "firing"
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    starts_at: datetime | None = None
    seen_keys: list[str] = Field(default_factory=list)
    source: str = ""
    component: str | None = None
    links: list[str] = Field(default_factory=list)
    received: int = 0
    """Deliveries of this alert, repeats included (``count``: its distinct firings and resolutions)."""


class ActionItem(BaseModel):
    title: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    due: datetime
    priority: str = "medium"
    """high | medium | low (``warroom.models.postmortem.PRIORITIES``)."""


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
    author: str | None = None
    """Who writes it (set when a draft is first saved); reminded along with the IC."""


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
    page_runs: list[PageRun] = Field(default_factory=list)
    status_plan: StatusPlan
    status_updates: list[StatusUpdate] = Field(default_factory=list)
    ic_reminder_at: datetime | None = None
    postmortem: PostmortemState = Field(default_factory=PostmortemState)
    alerts: list[AlertRecord] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    version: int = 0
    """Bumped on every change; the read model keeps only the newest version."""
    runbook_runs: list[RunbookRunRef] = Field(default_factory=list)
    """Runbook runs started on this incident (each its own workflow)."""
    component_impacts: list[ComponentImpact] = Field(default_factory=list)
    pending_public_events: list[PublicEvent] = Field(default_factory=list)
    """Subscriber fan-outs not yet started; a new run after continue-as-new starts them."""
    """What this incident does to status-page components, as intervals (see models.components)."""
    command_results: dict[str, CommandResult] = Field(default_factory=dict)
    """Answers to the latest commands by update id, carried across continue-as-new."""
    route: RouteChoice | None = None
    """The escalation policy and team routing chose at declaration (None: before routing existed)."""
    contacts: dict[str, Person] = Field(default_factory=dict)
    """How to reach the people resolved at page time, as the configuration said then
    (people added after the incident was declared are only known from here)."""
    relay: RelayState = Field(default_factory=RelayState)
    """The incident's Slack channel and outgoing webhooks (empty: not mirrored)."""

    @property
    def public_phase(self) -> PublicPhase:
        """What the status page says of the incident while it is open (see ``current_phase``)."""
        return current_phase(u.phase for u in self.status_updates)


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
    phase: PublicPhase | None = None
    """The public phase the update puts the incident in; None keeps the current one."""


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


class PostmortemAuthorInput(BaseModel):
    person: str
    by: str = "api"


class PostmortemInput(BaseModel):
    document: PostmortemDocument
    by: str = "api"


class NoteInput(BaseModel):
    """A message a responder marked in chat (a reaction or ``/warroom note``), for the timeline."""

    text: str
    by: str
    source: str = "slack"
    ref: str | None = None
    """Where it came from (``channel/ts``): the same message is added once."""


class CommandResult(BaseModel):
    number: int
    status: IncidentStatus
    message: str
    changed: bool = True
    """False when the command was accepted but had nothing left to do (e.g. a second
    ``esc`` for a level already escalated past)."""


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
    step: int | None = None
    """The escalation step a page belongs to (what an ``esc`` reply escalates from)."""
    page_cap_seconds: float = 0
    page: bool | None = None
    """A page of the escalation plan (or to the fallback): capped per contact, and
    withdrawn if the incident no longer wants it. Other notifications, such as the
    overdue-update notice to an IC, go out whatever the incident's state.
    None (requests from before the field existed): judged by ``kind``."""
    """The policy's per-contact cap for pages; 0: send at once."""
    via: str | None = None
    """For on-call follow-ups: the target (``schedule:NAME``, ``team:NAME``) the person was
    paged through; the send activity drops the message once they are no longer part of it."""
    unsubscribe_url: str | None = None
    """Status-page subscriber messages only: the one-click unsubscribe link, which email
    carries as ``List-Unsubscribe`` headers (pages never have one)."""


class NotificationResult(BaseModel):
    key: str
    status: str
    """sent | failed | duplicate | unconfirmed | withdrawn"""
    provider: str
    detail: str = ""
    held_seconds: float = 0
    """How long the per-contact cap held the page back."""
    bundled_with: list[int] = Field(default_factory=list)
    """Other incidents whose pages went out in the same message."""


class DeliveryStatusInput(BaseModel):
    """A provider's delivery callback for one page attempt (signal)."""

    key: str
    outcome: str
    """delivered | failed"""
    status: str = ""
    detail: str = ""


class PersistInput(BaseModel):
    state: IncidentState
    timeline: list[TimelineEntry] = Field(default_factory=list)
    status_updates: list[StatusUpdate] = Field(default_factory=list)
    release_group: bool = False
    """True once resolved: the alert group may open a new incident."""


IncidentState.model_rebuild()
IncidentInput.model_rebuild()
