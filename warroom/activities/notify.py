"""Notification channels: one small protocol, adapters per provider, a registry.

Every method (sms, voice, email) is served by an object with the same small
``Channel`` shape: each adapter needs the same two things, where to and what,
and the console and test channels serve all three methods at once. Adapters
raise ``PermanentDeliveryError`` for what retrying cannot fix (an invalid
number, an unsubscribed address) and ``TransientDeliveryError`` for what it may
(a 5xx, a 429, a timeout). The console adapter is the embedded default: it
writes the message to the log, so the product runs with no account. The Twilio
and SendGrid adapters live in ``twilio_channels`` and ``sendgrid_channel``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from warroom.models.incident import NotificationRequest
from warroom.models.paging import mask_contact  # noqa: F401 - used here, and it used to live here

log = logging.getLogger("warroom.notify")


class PermanentDeliveryError(Exception):
    """The provider refused the message for good; try another contact method."""


class TransientDeliveryError(Exception):
    """The provider failed this time; a retry may succeed."""


class Channel(Protocol):
    provider: str

    async def send(self, contact: str, req: NotificationRequest) -> str:
        """Deliver ``req`` to ``contact``; return the provider's message id."""
        ...


def contact_for(req: NotificationRequest) -> str | None:
    return req.person.contact(req.channel)


class PageGuard(Protocol):
    """Answers, just before a page goes out, whether its incident still wants it."""

    async def wanted(self, workflow_id: str, key: str) -> bool: ...


class AlwaysWanted:
    """For processes without a Temporal client (and unit tests): every page is wanted."""

    async def wanted(self, workflow_id: str, key: str) -> bool:
        return True


@dataclass
class ConsoleChannel:
    """Writes each message to the log; the message itself is recorded by the activity."""

    provider: str = "console"
    sent: int = 0

    async def send(self, contact: str, req: NotificationRequest) -> str:
        self.sent += 1
        log.info(
            "[%s to %s via %s %s] %s",
            req.kind.value.upper(),
            req.person_id,
            req.channel,
            mask_contact(contact),
            req.text,
            extra={"incident": req.incident_number},
        )
        return f"console-{self.sent}"


@dataclass
class NotifierRegistry:
    """Maps a contact method (sms, voice, email) to the channel that delivers it."""

    channels: dict[str, Channel] = field(default_factory=dict)
    fallback: Channel = field(default_factory=ConsoleChannel)

    def for_method(self, method: str) -> Channel:
        return self.channels.get(method, self.fallback)

    def describe(self) -> str:
        return ", ".join(f"{m} via {self.for_method(m).provider}" for m in ("voice", "sms", "email"))
