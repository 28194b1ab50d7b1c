"""The incident channel and outgoing webhooks: payloads and pure rules.

Channel names, the pinned status message, how a timeline entry reads in chat,
the ``/warroom`` command grammar, and the signatures of Slack's requests and of
our own webhooks. No I/O and no clock: callers pass the time in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field, SecretStr, field_validator

from warroom.models.incident import Deadline, Role, TimelineEntry

SLACK_NAME_MAX = 80
SLACK_REPLAY_WINDOW_SECONDS = 300
"""Slack's advice: refuse a request whose timestamp is more than five minutes away from now."""
WEBHOOK_SIGNATURE_HEADER = "X-Warroom-Signature"
WEBHOOK_TIMESTAMP_HEADER = "X-Warroom-Timestamp"
WEBHOOK_EVENT_HEADER = "X-Warroom-Event-Id"
NOT_MIRRORED = frozenset({"notify"})
"""Timeline kinds too fine-grained for a channel (each delivery attempt of a page)."""
ACK_ACTION = "warroom_ack"
ESCALATE_ACTION = "warroom_escalate"

SLACK = "slack"
WEBHOOKS = "webhooks"


# --- payloads between the incident workflow and the relay activities -----------------------------


class ChatPerson(BaseModel):
    id: str
    name: str = ""
    slack: str | None = None


class RelaySnapshot(BaseModel):
    """What the channel's pinned message shows, and who should be in the channel."""

    number: int
    title: str
    severity: str
    status: str
    summary: str = ""
    declared_at: datetime
    declared_by: str = ""
    acknowledged_by: str | None = None
    roles: dict[str, str] = Field(default_factory=dict)
    people: list[ChatPerson] = Field(default_factory=list)
    deadlines: list[Deadline] = Field(default_factory=list)
    runbook_runs: list[str] = Field(default_factory=list)
    components: list[str] = Field(default_factory=list)
    phase: str | None = None
    """The public phase while the incident is open (investigating, identified, monitoring)."""


class RelayInput(BaseModel):
    snapshot: RelaySnapshot
    entries: list[TimelineEntry] = Field(default_factory=list)


class RelayResult(BaseModel):
    enabled: bool = True
    """False: this target is not configured on the worker (nothing more will be sent)."""
    notes: list[str] = Field(default_factory=list)
    """Things worth a timeline entry (the channel was created, someone cannot be invited)."""


class WebhookEndpoint(BaseModel):
    """One receiver of outgoing webhooks (``WARROOM_WEBHOOKS``, a JSON list of these)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    url: str
    secret: SecretStr = Field(min_length=16)
    kinds: list[str] = Field(default_factory=list)
    """Timeline kinds to send (``declared``, ``ack``, ``resolved``...); empty: every kind."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("give a full URL starting with http:// or https://")
        return value

    def wants(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds


# --- names and texts --------------------------------------------------------------------------


def channel_name(number: int, title: str, prefix: str = "inc") -> str:
    """``inc-42-dns-resolution-failing``: lowercase letters, digits, '-' and '_', at most 80."""
    head = f"{prefix}-{number}"
    slug = re.sub(r"[^a-z0-9_-]+", "-", title.lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-_")
    if not slug:
        return head[:SLACK_NAME_MAX]
    return f"{head}-{slug}"[:SLACK_NAME_MAX].rstrip("-_")


def numbered_name(name: str, attempt: int) -> str:
    """Another name when ``name`` is taken (an archived channel of an older install): ``...-2``."""
    tail = f"-{attempt}"
    return name[: SLACK_NAME_MAX - len(tail)].rstrip("-_") + tail


@dataclass(frozen=True)
class Links:
    incident: str
    temporal: str
    runbooks: str


def links_for(number: int, site_url: str, temporal_ui: str, namespace: str) -> Links:
    site = site_url.rstrip("/")
    return Links(
        incident=f"{site}/api/incidents/{number}",
        temporal=f"{temporal_ui.rstrip('/')}/namespaces/{namespace}/workflows/incident-{number}",
        runbooks=f"{site}/api/runbooks",
    )


def _when(at: datetime) -> str:
    return f"{at:%H:%M:%S} UTC"


def status_text(snap: RelaySnapshot, links: Links) -> str:
    """The pinned message, as mrkdwn; kept current with chat.update."""
    lines = [
        f"*#{snap.number} {snap.title}*",
        f"*Status:* {snap.status}    *Severity:* {snap.severity}",
    ]
    if snap.phase:
        lines.append(f"*Status page says:* {snap.phase}")
    if snap.acknowledged_by:
        lines.append(f"*Acknowledged by:* {snap.acknowledged_by}")
    roles = [f"{Role(r).title}: {p}" for r, p in sorted(snap.roles.items())] if snap.roles else []
    lines.append("*Roles:* " + ("; ".join(roles) if roles else "none assigned yet"))
    if snap.components:
        lines.append("*Components:* " + ", ".join(snap.components))
    if snap.deadlines:
        lines.append("*Next deadlines:* " + "; ".join(
            f"{d.name.replace('_', ' ')} by {_when(d.at)}" for d in snap.deadlines))
    else:
        lines.append("*Next deadlines:* none")
    if snap.runbook_runs:
        lines.append("*Runbook runs:* " + "; ".join(snap.runbook_runs))
    lines.append(f"<{links.incident}|Incident> | <{links.temporal}|Temporal UI> | <{links.runbooks}|Runbooks>")
    return "\n".join(lines)


def status_blocks(snap: RelaySnapshot, links: Links) -> list[dict[str, object]]:
    blocks: list[dict[str, object]] = [{"type": "section", "text": {"type": "mrkdwn", "text": status_text(snap, links)}}]
    if snap.status == "triggered":
        value = str(snap.number)
        blocks.append({
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": ACK_ACTION, "value": value, "style": "primary",
                 "text": {"type": "plain_text", "text": "Acknowledge"}},
                {"type": "button", "action_id": ESCALATE_ACTION, "value": value,
                 "text": {"type": "plain_text", "text": "Escalate now"}},
            ],
        })
    return blocks


def entry_text(entry: TimelineEntry) -> str:
    return f"`{_when(entry.at)}` *{entry.kind}*: {entry.text}"


def digest(text: str, blocks: object) -> str:
    return hashlib.sha256(f"{text}|{blocks!r}".encode()).hexdigest()


# --- the /warroom command ---------------------------------------------------------------------

ROLE_WORDS: dict[str, Role] = {
    "ic": Role.INCIDENT_COMMANDER, "commander": Role.INCIDENT_COMMANDER, "incident_commander": Role.INCIDENT_COMMANDER,
    "tl": Role.TECHNICAL_LEAD, "tech": Role.TECHNICAL_LEAD, "technical_lead": Role.TECHNICAL_LEAD,
    "comms": Role.COMMUNICATIONS_LEAD, "cl": Role.COMMUNICATIONS_LEAD, "communications_lead": Role.COMMUNICATIONS_LEAD,
    "scribe": Role.SCRIBE,
}
USAGE = (
    "Usage: `/warroom ack`, `/warroom status <text>`, `/warroom sev 2`, `/warroom role ic @person`, "
    "`/warroom resolve <summary>`, `/warroom note <text>`. In a channel that is not an incident's, "
    "name the incident first: `/warroom 42 ack`."
)


@dataclass(frozen=True)
class SlashCommand:
    verb: str
    """ack | status | sev | role | resolve | note | help"""
    number: int | None = None
    text: str = ""
    severity: int | None = None
    role: Role | None = None
    person: str | None = None
    """A Slack member id (``U123``) or a warroom person id, as written."""


class CommandProblem(ValueError):
    pass


_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_NUMBER = re.compile(r"^#?(\d{1,30})$")


def parse_command(text: str) -> SlashCommand:
    """``/warroom`` text -> what to do; a CommandProblem says what is wrong, in words."""
    words = text.strip().split(None, 1)
    number = None
    if words and (m := _NUMBER.fullmatch(words[0])):
        number = int(m.group(1))
        if not 1 <= number <= 2**31 - 1:
            raise CommandProblem(f"#{number} is not an incident number")
        words = words[1].split(None, 1) if len(words) > 1 else []
    if not words:
        return SlashCommand("help", number)
    verb, rest = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
    if verb in ("ack", "acknowledge"):
        return SlashCommand("ack", number)
    if verb in ("status", "update"):
        if not rest:
            raise CommandProblem("say what the update is: `/warroom status <text>`")
        return SlashCommand("status", number, text=rest)
    if verb in ("sev", "severity"):
        m = re.fullmatch(r"(?:sev-?)?([1-4])", rest.lower())
        if m is None:
            raise CommandProblem("give a severity from 1 to 4: `/warroom sev 2`")
        return SlashCommand("sev", number, severity=int(m.group(1)))
    if verb == "role":
        parts = rest.split()
        if len(parts) != 2 or parts[0].lower() not in ROLE_WORDS:
            raise CommandProblem("name a role (ic, tl, comms, scribe) and a person: `/warroom role ic @person`")
        who = parts[1]
        if (m := _MENTION.fullmatch(who)) is not None:
            who = m.group(1)
        else:
            who = who.lstrip("@")
        return SlashCommand("role", number, role=ROLE_WORDS[parts[0].lower()], person=who)
    if verb == "resolve":
        if not rest:
            raise CommandProblem("say what restored service: `/warroom resolve <summary>`")
        return SlashCommand("resolve", number, text=rest)
    if verb == "note":
        if not rest:
            raise CommandProblem("say what to note: `/warroom note <text>`")
        return SlashCommand("note", number, text=rest)
    if verb == "help":
        return SlashCommand("help", number)
    raise CommandProblem(f"'{verb[:40]}' is not a warroom command. {USAGE}")


# --- signatures ---------------------------------------------------------------------------------


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_request_problem(secret: str, timestamp: str | None, signature: str | None, body: bytes,
                          now: float) -> str | None:
    """Why a request claiming to come from Slack is refused, or None when it is genuine and fresh."""
    if not timestamp or not signature:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
    try:
        ts = int(timestamp)
    except ValueError:
        return "X-Slack-Request-Timestamp is not a number"
    if abs(now - ts) > SLACK_REPLAY_WINDOW_SECONDS:
        return "the request is more than five minutes old (or from the future): refused as a possible replay"
    if not hmac.compare_digest(slack_signature(secret, timestamp, body), signature):
        return "X-Slack-Signature does not match"
    return None


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "<timestamp>.<body>")."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(secret: str, timestamp: str, signature: str, body: bytes, now: float,
                   tolerance: float = SLACK_REPLAY_WINDOW_SECONDS) -> bool:
    """What a receiver does (documented in the README): fresh timestamp, constant-time compare."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(webhook_signature(secret, timestamp, body), signature)


def webhook_event(snap: RelaySnapshot, entry: TimelineEntry) -> dict[str, object]:
    return {
        "id": event_key(snap.number, entry.seq),
        "type": f"incident.{entry.kind}",
        "incident": {
            "number": snap.number,
            "title": snap.title,
            "severity": snap.severity,
            "status": snap.status,
            "roles": dict(snap.roles),
            "acknowledged_by": snap.acknowledged_by,
        },
        "entry": {"seq": entry.seq, "at": entry.at.isoformat(), "kind": entry.kind, "text": entry.text,
                  "actor": entry.actor},
    }


def event_key(number: int, seq: int) -> str:
    return f"incident-{number}/timeline-{seq}"
