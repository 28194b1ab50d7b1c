"""The read model: tables written only by activities (plus the number allocator).

The workflows are the source of truth; everything here can be rebuilt from
them. Every write is idempotent, because an activity may run more than once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    delete,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware datetimes (SQLite forgets zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the read model")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names are fixed here, so that a later migration can name what it alters
(SQLite's batch mode and PostgreSQL's ALTER both need the name)."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class IncidentNumber(Base):
    """Allocates human-sized incident numbers (#42), once per request key."""

    __tablename__ = "incident_numbers"
    __table_args__ = {"sqlite_autoincrement": True}
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    """``api:<digest of the caller and their Idempotency-Key>:<digest of the request>``
    (older rows: ``api:`` plus the key)."""
    created_at: Mapped[datetime]


class AlertGroup(Base):
    """Which open incident an alert group feeds; released when that incident resolves."""

    __tablename__ = "alert_groups"
    group_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_key: Mapped[str] = mapped_column(Text)
    incident_number: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime]


class IncidentRow(Base):
    __tablename__ = "incidents"
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(8), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    source: Mapped[str] = mapped_column(String(32))
    components: Mapped[list[str]] = mapped_column(JSON, default=list)
    declared_at: Mapped[datetime]
    detected_at: Mapped[datetime | None]
    impact_started_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    postmortem_deadline: Mapped[datetime | None]
    postmortem_submitted_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)


class TimelineRow(Base):
    __tablename__ = "timeline_entries"
    incident_number: Mapped[int] = mapped_column(ForeignKey("incidents.number"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(100))


class StatusUpdateRow(Base):
    __tablename__ = "status_updates"
    incident_number: Mapped[int] = mapped_column(ForeignKey("incidents.number"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    phase: Mapped[str | None] = mapped_column(String(16), default=None)
    """The public phase the update set (``PublicPhase``); NULL: it kept the one in force,
    or it was written before phases existed (migration 0009)."""


class NotificationRow(Base):
    """One row per delivery attempt key: the unique key is what makes a send happen once."""

    __tablename__ = "notifications"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    incident_number: Mapped[int] = mapped_column(Integer, index=True)
    person_id: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    provider_id: Mapped[str | None] = mapped_column(String(100), index=True)
    """The provider's message/call id: how a delivery callback finds its page."""
    created_at: Mapped[datetime] = mapped_column(index=True)
    sent_at: Mapped[datetime | None]
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    """The incident's workflow (a delivery callback signals it)."""
    step: Mapped[int | None] = mapped_column(Integer)
    """The escalation step of a page: an ``esc`` reply escalates from it, once."""
    contact_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    """Hash of method + phone number/address: pages held by the cap are bundled by it."""


class ContactSlot(Base):
    """When a phone number or address last got a page on one method (the per-contact cap)."""

    __tablename__ = "contact_slots"
    contact_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_sent_at: Mapped[datetime]


class TwilioWebhook(Base):
    """Every Twilio webhook acted on, once: the unique key makes a redelivery act once,
    and the stored answer is what the redelivery gets back."""

    __tablename__ = "twilio_webhooks"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    """``sms:<MessageSid>``, ``voice:<CallSid>:<Digits>`` or ``status:<Sid>:<status>``."""
    kind: Mapped[str] = mapped_column(String(16))
    sender_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    """Hash of the sender's number (the auto-reply limit counts by it)."""
    person_id: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(index=True)
    replied: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(Text, default="")
    response: Mapped[str | None] = mapped_column(Text)
    """The TwiML answered; None while the first delivery is still being handled."""



class RunbookRunRow(Base):
    """One runbook run on an incident; written by the run's workflow, newest version wins."""

    __tablename__ = "runbook_runs"
    incident_number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    run: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    workflow_id: Mapped[str] = mapped_column(String(200))
    runbook_id: Mapped[str] = mapped_column(String(100), index=True)
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    started_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    current_step: Mapped[int | None] = mapped_column(Integer)
    aborted_by: Mapped[str | None] = mapped_column(String(100))
    result: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer)


class RunbookStepRow(Base):
    """One step of a run, as last reported: status, attempts, trimmed output, duration."""

    __tablename__ = "runbook_run_steps"
    incident_number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    run: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    step_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    destructive: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    output: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(300))


class RunbookStepClaim(Base):
    """One row per attempt key of an automated step, claimed before any side effect:
    a retried activity finds it and never performs the same attempt twice."""

    __tablename__ = "runbook_step_claims"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    incident_number: Mapped[int] = mapped_column(Integer, index=True)
    run: Mapped[int] = mapped_column(Integer)
    step_index: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    """running | finished | unconfirmed"""
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    """How often an interrupted attempt of an idempotent step was started again."""
    claimed_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
# --- postmortems and action items ---------------------------------------------------------
# Drafts are the API's own record (people write them; there is no workflow to rebuild
# them from). Action items are read model, written by their tracker workflow's activity.


class PostmortemDraftRow(Base):
    """The postmortem being written for one incident: saved drafts, then the submitted text."""

    __tablename__ = "postmortem_drafts"
    incident_number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    author: Mapped[str] = mapped_column(String(100))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime | None]
    submitted_by: Mapped[str | None] = mapped_column(String(100))


class ActionItemRow(Base):
    """One action item of a submitted postmortem, as its tracker last reported it."""

    __tablename__ = "action_items"
    incident_number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    due: Mapped[datetime] = mapped_column(index=True)
    priority: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(8))
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(100))
    overdue_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer)


# --- the status page --------------------------------------------------------------------
# component_impacts is read model (written by the persist activity from the
# incident's state). Maintenance windows, subscribers, deliveries and held
# alerts are the status page's own records: the API (and the fan-out
# activities) own them, there is no workflow to rebuild them from.


class ComponentImpactRow(Base):
    """One interval of one incident holding one component in one state."""

    __tablename__ = "component_impacts"
    incident_number: Mapped[int] = mapped_column(ForeignKey("incidents.number"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    component: Mapped[str] = mapped_column(String(100), index=True)
    state: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None] = mapped_column(index=True)
    set_by: Mapped[str | None] = mapped_column(String(100))


class MaintenanceRow(Base):
    __tablename__ = "maintenance_windows"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    components: Mapped[list[str]] = mapped_column(JSON, default=list)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    cancelled_at: Mapped[datetime | None]


class SubscriberRow(Base):
    __tablename__ = "subscribers"
    __table_args__ = (UniqueConstraint("channel", "contact"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(8))
    contact: Mapped[str] = mapped_column(String(320))
    components: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Catalog ids; empty means everything."""
    status: Mapped[str] = mapped_column(String(16), index=True)
    nonce: Mapped[str] = mapped_column(String(32))
    """Changes on every (re)subscription, so older confirmation links stop working."""
    code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]


class SubscriberDeliveryRow(Base):
    """One row per subscriber per public event: the unique key makes a message go out once."""

    __tablename__ = "subscriber_deliveries"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    event_key: Mapped[str] = mapped_column(String(200), index=True)
    subscriber_id: Mapped[int] = mapped_column(Integer, index=True)
    channel: Mapped[str] = mapped_column(String(8))
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class HeldAlertRow(Base):
    """A firing alert for a component under planned maintenance: recorded, nobody paged."""

    __tablename__ = "held_alerts"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    component: Mapped[str] = mapped_column(String(100))
    maintenance_id: Mapped[int] = mapped_column(Integer, index=True)
    group_key: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(index=True)


class AlertDeliveryRow(Base):
    """One alert delivery as it arrived (any source), and what became of it."""

    __tablename__ = "alert_deliveries"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32), index=True)
    integration: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(index=True)
    payload: Mapped[Any] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(32), default="received")
    """received | declared | joined | recorded | ignored | held | dropped | failed"""
    incident_number: Mapped[int | None] = mapped_column(Integer, index=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class AlertWindowRow(Base):
    """The incident that last took an alert for a component, and when: a new alert group for
    the same component within the grouping window joins that incident."""

    __tablename__ = "alert_windows"
    component_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    component: Mapped[str] = mapped_column(String(100))
    incident_number: Mapped[int] = mapped_column(Integer, index=True)
    last_alert_at: Mapped[datetime]


class CustomerReportRow(Base):
    """A problem a customer reported on the status page (plain text, never rendered as HTML)."""

    __tablename__ = "customer_reports"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    component: Mapped[str | None] = mapped_column(String(100), index=True)
    text: Mapped[str] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(200))
    client: Mapped[str] = mapped_column(String(64))
    """A hash of the client address (rate limits and triage; the address itself is not kept)."""
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    """new | attached | declared | dismissed"""
    incident_number: Mapped[int | None] = mapped_column(Integer, index=True)
    handled_by: Mapped[str | None] = mapped_column(String(200))
    handled_at: Mapped[datetime | None]


class UptimeCheckRow(Base):
    """The recorded state of one built-in uptime check: failures in a row, the open alert, the last run."""

    __tablename__ = "uptime_checks"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    component: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(8))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    alerting_since: Mapped[datetime | None]
    last_run_id: Mapped[str] = mapped_column(String(64), default="")
    last_at: Mapped[datetime | None]
    last_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_detail: Mapped[str] = mapped_column(Text, default="")
    last_action: Mapped[str] = mapped_column(String(8), default="none")
    last_latency: Mapped[float | None] = mapped_column(Float)
    last_alert_since: Mapped[datetime | None]
    """The start of the episode the last fire or resolve was about (a retried run answers with it)."""


class OnCallConfigRow(Base):
    """Every version of the policy document (people, teams, schedules, escalation policies,
    routing and paging rules, durations): the newest row is the configuration in force.

    Not rebuilt from workflows: it is configuration, seeded from the policy file and
    changed through the API. Rows are never updated, so the history is the change log."""

    __tablename__ = "oncall_config_versions"
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The document as given (YAML read into JSON), validated before it was stored."""
    digest: Mapped[str] = mapped_column(String(64), index=True)
    """SHA-256 of the document's canonical JSON."""
    source: Mapped[str] = mapped_column(String(16))
    """``file`` (seeded at start) or ``api``."""
    origin: Mapped[str] = mapped_column(Text, default="")
    """The file's path, for ``file`` rows."""
    file_digest: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the file's bytes, for ``file`` rows: a start with an unchanged file seeds nothing."""
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")



# --- access control: written by the API and the admin CLI, not by activities ----------------
# Not read model: these record who may act and what they asked for, and cannot
# be rebuilt from the workflows.


class UserRow(Base):
    """A person (or a machine) who may call warroom; the id is the policy's person id for responders."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(300))
    """``scrypt$...``; None: no web sign-in (a machine user that only has tokens)."""
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]


class ApiTokenRow(Base):
    """An API token: only its SHA-256 is kept; ``prefix`` finds the row, the hash proves the secret."""

    __tablename__ = "api_tokens"
    prefix: Mapped[str] = mapped_column(String(12), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(100), ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(16))
    """A lower role than the user's (a read-only token); None: the user's role."""
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class WebSessionRow(Base):
    """A signed-in browser: the cookie holds a random value, this row its SHA-256 and the CSRF token."""

    __tablename__ = "web_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(100), ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    last_seen_at: Mapped[datetime | None]
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    ended_at: Mapped[datetime | None]


class IntegrationRow(Base):
    """An alert source (an Alertmanager, ...) and the hash of the secret it authenticates with."""

    __tablename__ = "integrations"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(32))
    prefix: Mapped[str] = mapped_column(String(12), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class AuditRow(Base):
    """One command or configuration change asked of warroom, accepted or refused. Append-only:
    nothing in warroom updates or deletes a row, and triggers refuse it in the database too."""

    __tablename__ = "audit_log"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str | None] = mapped_column(String(200), index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    credential: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    incident_number: Mapped[int | None] = mapped_column(Integer, index=True)
    target: Mapped[str | None] = mapped_column(String(300))
    accepted: Mapped[bool] = mapped_column(Boolean, index=True)
    status_code: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[str] = mapped_column(Text, default="")


class RateLimitRow(Base):
    """Token buckets shared by every API replica (one row per key, e.g. ``login:203.0.113.9``)."""

    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float, index=True)
    """Unix seconds of the last take."""


AUDIT_APPEND_ONLY_SQL = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    ],
}
"""Triggers that make the database itself refuse to change or delete audit rows; created with the
table by ``create_schema``, and the statements a migration that creates ``audit_log`` runs."""


@event.listens_for(AuditRow.__table__, "after_create")
def _audit_append_only(target: Any, connection: Any, **_kw: Any) -> None:
    for statement in AUDIT_APPEND_ONLY_SQL.get(connection.dialect.name, []):
        connection.exec_driver_sql(statement)


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, _context: Any, _instances: Any) -> None:
    changed = [o for o in (*session.dirty, *session.deleted) if isinstance(o, AuditRow)]
    if changed:
        raise ValueError("the audit log is append-only: its rows are never changed or deleted")


def replace_component_impacts(session: Session, number: int, version: int, impacts: list[dict[str, Any]]) -> None:
    """Store an incident's impact intervals, unless a newer snapshot already did.

    Called after :func:`upsert_newer` in the same transaction: the incident row
    then holds the newest version seen, and only that version's intervals stay.
    """
    stored = session.scalar(select(IncidentRow.version).where(IncidentRow.number == number))
    if stored is not None and stored > version:
        return
    session.execute(delete(ComponentImpactRow).where(ComponentImpactRow.incident_number == number))
    if impacts:
        session.execute(insert(ComponentImpactRow), [{"incident_number": number, "seq": i, **imp}
                                                     for i, imp in enumerate(impacts)])


def make_engine(url: str) -> Engine:
    """An engine for the read model; SQLite gets WAL and a busy timeout so the API
    and the worker can share the file."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _guard(dbapi_conn: Any, _record: Any) -> None:
            # Defence in depth: the read model never leaves a transaction open for
            # long; one that a crashed thread left idle must not hold its locks
            # (and block a migration or a schema drop) forever.
            with dbapi_conn.cursor() as cur:
                cur.execute("SET idle_in_transaction_session_timeout = '60s'")
            dbapi_conn.commit()

    return engine


def create_schema(engine: Engine) -> None:
    """Create every table straight from the metadata: for throw-away test databases.

    Real databases get their schema from the migrations (``warroom db upgrade``);
    a test keeps the two identical."""
    Base.metadata.create_all(engine)


class RequestKeyReused(Exception):
    """An idempotency key came back with a different request than the one it declared."""

    def __init__(self, number: int) -> None:
        super().__init__(number)
        self.number = number


def allocate_incident_number(
    session: Session, now: datetime, request_key: str | None = None, fingerprint: str | None = None
) -> int:
    """A new incident number; the same ``request_key`` always gets the same number.

    With ``fingerprint`` (a digest of the request), the key is stored as
    ``<request_key>:<fingerprint>`` and may come back only with the same request: another
    one raises RequestKeyReused naming the incident the key declared."""
    full = f"{request_key}:{fingerprint}" if request_key is not None and fingerprint else request_key
    if request_key is not None:
        stored = _stored_request(session, request_key, full)
        if stored is not None:
            number, key = stored
            if key != full:
                raise RequestKeyReused(number)
            return number
    try:
        with session.begin_nested():
            row = IncidentNumber(request_key=full, created_at=now)
            session.add(row)
            session.flush()
            return row.number
    except IntegrityError:
        number = session.scalar(select(IncidentNumber.number).where(IncidentNumber.request_key == full))
        assert number is not None
        return number


def _stored_request(session: Session, request_key: str, full: str | None) -> tuple[int, str] | None:
    found = session.execute(
        select(IncidentNumber.number, IncidentNumber.request_key)
        .where((IncidentNumber.request_key == full) | IncidentNumber.request_key.startswith(f"{request_key}:"))
        .order_by(IncidentNumber.number)
        .limit(1)
    ).first()
    return (found[0], str(found[1])) if found is not None else None


class InstanceSecretRow(Base):
    """A secret every process of one installation shares (the API, each worker), made once.

    Each process may run in its own container with its own data directory; the
    database is what they have in common."""

    __tablename__ = "instance_secrets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


def instance_secret(engine: Engine, name: str, candidate: str, now: datetime) -> tuple[str, bool]:
    """The stored secret ``name``, storing ``candidate`` if there is none yet.

    Returns (value, whether ``candidate`` was stored). Processes starting together
    all agree: the INSERT skips an existing row (on PostgreSQL it waits for a
    concurrent insert of the same name to commit; on SQLite the write lock
    serialises them), and the value is read back after that.
    """
    with engine.begin() as conn:
        # RETURNING rather than rowcount, which psycopg reports as -1 for this statement.
        stored = conn.execute(
            _dialect_insert(engine.dialect.name)(InstanceSecretRow)
            .values(name=name, value=candidate, created_at=now)
            .on_conflict_do_nothing()
            .returning(InstanceSecretRow.name)
        ).first() is not None
    with engine.connect() as conn:
        value = conn.scalar(select(InstanceSecretRow.value).where(InstanceSecretRow.name == name))
    if value is None:  # pragma: no cover - a row once written is never deleted by warroom
        raise RuntimeError(f"the instance secret {name!r} vanished while it was being read")
    return value, stored


def insert_ignoring_duplicates(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """INSERT that skips rows whose primary key already exists (both dialects)."""
    if not rows:
        return
    session.execute(_dialect_insert(session.get_bind().dialect.name)(model).on_conflict_do_nothing(), rows)


def _dialect_insert(dialect: str) -> Any:
    """The dialect's ``insert``, which has ``on_conflict_do_nothing``."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {dialect}")
    return dialect_insert


def upsert_newer(session: Session, values: dict[str, Any]) -> None:
    """Write an incident row unless a newer version is already stored."""
    number, version = values["number"], values["version"]
    result = session.execute(
        update(IncidentRow)
        .where(IncidentRow.number == number, IncidentRow.version < version)
        .values(**values)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        return
    if session.get(IncidentRow, number) is None:
        try:
            with session.begin_nested():
                session.execute(insert(IncidentRow).values(**values))
        except IntegrityError:
            session.execute(
                update(IncidentRow)
                .where(IncidentRow.number == number, IncidentRow.version < version)
                .values(**values)
            )


class ChatChannelRow(Base):
    """An incident's Slack channel: what was created, pinned, invited and posted (activities.chat)."""

    __tablename__ = "chat_channels"
    incident_number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    channel_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    status_ts: Mapped[str | None] = mapped_column(String(32))
    """The pinned status message (Slack's message timestamp)."""
    status_digest: Mapped[str] = mapped_column(String(64), default="")
    posted_seq: Mapped[int] = mapped_column(Integer, default=0)
    """The last timeline entry posted to the channel."""
    invited: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]


class SlackRequestRow(Base):
    """A signed Slack request already acted on, by its signature.

    Slack's signature covers the request's timestamp and body, and a timestamp is
    accepted for five minutes: the same signed request sent again in that time
    (a replay, or a proxy retrying) finds its row and acts no more. Rows older than
    the window are removed as new ones arrive."""

    __tablename__ = "slack_requests"
    signature: Mapped[str] = mapped_column(String(100), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)


def first_slack_request(session: Session, signature: str, now: datetime, forget_before: datetime) -> bool:
    """Record a verified Slack request; False when the same signed request came before."""
    session.execute(delete(SlackRequestRow).where(SlackRequestRow.received_at < forget_before))
    # RETURNING rather than rowcount, which psycopg reports as -1 for this statement.
    return session.execute(
        _dialect_insert(session.get_bind().dialect.name)(SlackRequestRow)
        .values(signature=signature, received_at=now)
        .on_conflict_do_nothing()
        .returning(SlackRequestRow.signature)
    ).first() is not None


class WebhookDeliveryRow(Base):
    """One outgoing webhook event to one endpoint: the unique key makes it go out once."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint", "event_key", name="uq_webhook_delivery"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    event_key: Mapped[str] = mapped_column(String(200), index=True)
    incident_number: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16))
    """delivered | refused (the receiver answered 4xx: not sent again)"""
    http_status: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]
