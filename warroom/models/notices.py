"""What status-page subscribers receive, per channel.

Email has room for the whole update and the links; an SMS is cut to fit two
segments and always ends with the way out.
"""

from __future__ import annotations

from warroom.models.incident import PublicPhase
from warroom.models.subscribers import PublicEvent, PublicEventKind, SubscriberChannel

SMS_LIMIT = 300
_PHASES = {p.value for p in PublicPhase}


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def _what(event: PublicEvent) -> str:
    return {
        PublicEventKind.NEW_INCIDENT: "New incident",
        PublicEventKind.UPDATE: "Update",
        PublicEventKind.RESOLVED: "Resolved",
    }.get(event.kind, "Notice")


def incident_notice(
    event: PublicEvent,
    channel: SubscriberChannel,
    page_name: str,
    incident_url: str,
    unsubscribe_url: str,
    component_names: list[str],
) -> tuple[str, str]:
    """(subject, text) telling one subscriber about one incident event."""
    what = _what(event)
    subject = f"[{page_name}] {what}: {event.title}"
    affected = ", ".join(component_names)
    body = event.message.strip()
    if event.kind == PublicEventKind.UPDATE and event.phase in _PHASES:
        # The update says where the incident stands, the way the status page labels it.
        body = f"{PublicPhase(event.phase).label} - {body}"
    if event.kind == PublicEventKind.NEW_INCIDENT and not body:
        body = (
            f"We are investigating a problem{' affecting ' + affected if affected else ''}. "
            "We will post updates on the status page as we learn more."
        )
    if channel == SubscriberChannel.SMS:
        tail = f" {incident_url} Stop: {unsubscribe_url}"
        head = f"{page_name} {what.lower()}: {event.title}. "
        room = SMS_LIMIT - len(tail) - len(head)
        return subject, head + _shorten(body, max(room, 20)) + tail
    lines = [f"{what}: {event.title}"]
    if affected:
        lines.append(f"Affected: {affected}")
    lines += ["", body, "", f"Follow this incident: {incident_url}", "",
              "You receive this because you subscribed to status updates.",
              f"Unsubscribe with one click: {unsubscribe_url}"]
    return subject, "\n".join(lines)


def confirmation(channel: SubscriberChannel, page_name: str, confirm_url: str, code: str) -> tuple[str, str]:
    """The double opt-in message: nothing else is sent until it is answered."""
    subject = f"Confirm your subscription to {page_name}"
    if channel == SubscriberChannel.SMS:
        return subject, (
            f"{page_name}: your confirmation code is {code}. Enter it on the status page to start "
            "receiving incident updates. Ignore this if you did not ask."
        )
    return subject, "\n".join([
        f"Someone (we hope you) asked to receive {page_name} incident updates at this address.",
        "",
        f"Confirm with one click: {confirm_url}",
        "",
        "If it was not you, ignore this message: you will not hear from us again.",
    ])
