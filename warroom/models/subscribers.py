"""Status-page subscribers: contacts, signed links, who hears of what, and the
payloads of the subscriber fan-out workflow and its activities.

Everything here is pure. Secrets are passed in by the composition root; the
workflow payloads never carry one (links and codes are made in the activity
that sends the message), so nothing secret lands in a Temporal history.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class SubscriberChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    """Asked to confirm; hears nothing until confirmed (double opt-in)."""
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
_PHONE = re.compile(r"^\+[1-9]\d{7,14}$")


def normalise_contact(channel: SubscriberChannel, raw: str) -> str:
    """The canonical form of an address or phone number; ValueError with the reason."""
    text = raw.strip()
    if channel == SubscriberChannel.EMAIL:
        if not _EMAIL.match(text):
            raise ValueError("that does not look like an email address")
        # Local parts are case-sensitive on paper, never in practice: one address, one subscription.
        return text.lower()
    digits = re.sub(r"[\s().-]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not _PHONE.match(digits):
        raise ValueError("give the phone number in international form, e.g. +44 20 7946 0000")
    return digits


def wants(subscribed_to: Iterable[str], event_components: Iterable[str]) -> bool:
    """Does a subscriber to ``subscribed_to`` (catalog ids; empty = everything) hear of
    an event on ``event_components`` (catalog ids; empty = the whole platform)?"""
    mine, theirs = set(subscribed_to), set(event_components)
    return not mine or not theirs or bool(mine & theirs)


# --- signed tokens (confirmation and one-click unsubscribe links, SMS codes) ---------------


def _mac(secret: str, message: str) -> bytes:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()


def sign(secret: str, purpose: str, subscriber_id: int, nonce: str) -> str:
    sig = base64.urlsafe_b64encode(_mac(secret, f"{purpose}:{subscriber_id}:{nonce}")[:18]).decode().rstrip("=")
    return f"{subscriber_id}.{nonce}.{sig}"


def verify(secret: str, purpose: str, token: str) -> tuple[int, str] | None:
    """(subscriber id, nonce) of a token this secret signed for ``purpose``, else None."""
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[0].isdigit() or len(token) > 200:
        return None
    subscriber_id, nonce = int(parts[0]), parts[1]
    expected = sign(secret, purpose, subscriber_id, nonce)
    return (subscriber_id, nonce) if hmac.compare_digest(expected, token.strip()) else None


def sms_code(secret: str, subscriber_id: int, nonce: str) -> str:
    """The six-digit code texted to confirm an SMS subscription."""
    value = int.from_bytes(_mac(secret, f"sms-code:{subscriber_id}:{nonce}")[:8], "big")
    return f"{value % 1_000_000:06d}"


CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"


def list_unsubscribe_headers(unsubscribe_url: str) -> dict[str, str]:
    """Mail headers that let a mail client offer "unsubscribe" itself.

    ``List-Unsubscribe`` (RFC 2369) names the link; ``List-Unsubscribe-Post``
    (RFC 8058) says that one POST to it, with the body ``List-Unsubscribe=One-Click``,
    unsubscribes without a further click. RFC 8058 allows that only for an HTTPS
    link, so a plain-HTTP one (a local install) gets the first header alone.
    """
    headers = {"List-Unsubscribe": f"<{unsubscribe_url}>"}
    if unsubscribe_url.startswith("https://"):
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers
MAX_CODE_ATTEMPTS = 5


# --- fan-out payloads (Temporal: new fields need defaults) ---------------------------------


class PublicEventKind(StrEnum):
    NEW_INCIDENT = "new_incident"
    UPDATE = "update"
    RESOLVED = "resolved"
    CONFIRM = "confirm"
    """The double opt-in message to one pending subscriber."""


class PublicEvent(BaseModel):
    key: str
    """Unique per event: part of every delivery's idempotency key."""
    kind: PublicEventKind
    incident_number: int | None = None
    title: str = ""
    components: list[str] = Field(default_factory=list)
    """As the incident names them; the activities resolve them through the catalog."""
    message: str = ""
    at: datetime
    phase: str | None = None
    """A status update's public phase (investigating, identified, monitoring:
    ``warroom.models.incident.PublicPhase``); None for other events and older ones."""


class FanoutInput(BaseModel):
    event: PublicEvent
    subscriber_ids: list[int] | None = None
    """Only these subscribers (any status but unsubscribed); None: every confirmed one who wants it."""
    concurrency: int = 4
    """Batches in flight at once."""
    batch_size: int = 50
    """Subscribers per delivery activity."""
    send_concurrency: int = 10
    """Messages one batch sends at a time: at most concurrency x send_concurrency in flight."""
    page_size: int = 500
    after_id: int = 0
    """Continue-as-new cursor: subscribers up to this id have been handled."""
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    history_limit: int = 10000
    """Continue as new once the history grows past this many events."""
    retry_initial_interval_seconds: float = 1
    retry_max_interval_seconds: float = 300
    give_up_after_seconds: float = 86400
    """A message still undelivered this long after its first attempt is recorded as expired."""


class FanoutResult(BaseModel):
    sent: int = 0
    skipped: int = 0
    failed: int = 0


class SubscriberPageInput(BaseModel):
    event: PublicEvent
    after_id: int
    limit: int
    subscriber_ids: list[int] | None = None


class SubscriberPage(BaseModel):
    ids: list[int] = Field(default_factory=list)
    next_after: int | None = None
    """Cursor for the next page; None when this was the last."""


class DeliveryBatchInput(BaseModel):
    event: PublicEvent
    subscriber_ids: list[int]
    send_concurrency: int = 10


class DeliveryBatchResult(BaseModel):
    sent: int = 0
    """Delivered, now or by an earlier attempt."""
    skipped: int = 0
    """No longer subscribed (or not yet confirmed)."""
    failed: int = 0
    """Refused for good by the provider, or an attempt whose outcome is unknown (never resent)."""


class DeliveryOutcome(BaseModel):
    """The fan-out gave up on these deliveries: record why on each row not yet settled."""

    event_key: str
    subscriber_ids: list[int]
    status: str
    detail: str = ""


def delivery_key(event_key: str, subscriber_id: int) -> str:
    return f"{event_key}/subscriber-{subscriber_id}"
