"""Paging rules as pure functions: which methods a page uses, in what order it
falls back, what an SMS reply means, what a delivery callback says.

The workflow, the activities and the Twilio webhooks all call these; tests call
them with plain values.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from warroom.models.incident import NotificationKind
from warroom.models.policy import ContactMethod, Person, Policy
from warroom.models.severity import Severity

PAGE_KINDS = frozenset({NotificationKind.PAGE, NotificationKind.ESCALATION, NotificationKind.FALLBACK})
"""Notifications that wake someone: they use the severity's methods, fall back, obey the
per-contact cap and are withdrawn the moment the incident is acknowledged."""


# --- which methods, in which order ---------------------------------------------------


@dataclass(frozen=True)
class PagePlan:
    methods: tuple[ContactMethod, ...]
    """Every method of the person, in the order they are tried."""
    at_once: int
    """How many of ``methods`` go out together at the start; the rest are fallbacks."""

    @property
    def first(self) -> tuple[ContactMethod, ...]:
        return self.methods[: self.at_once]


def page_plan(
    policy: Policy, person: Person, severity: Severity, methods: Sequence[ContactMethod] | None = None
) -> PagePlan:
    """The severity's methods (or ``methods``, what the paging rules chose) that the
    person has go out at once, in the person's order; every other method of theirs
    is a fallback, in their order. A person with none of them starts with their
    first method."""
    order = person.methods()
    wanted = set(methods) if methods else set(policy.methods_for(severity))
    first = [m for m in order if m in wanted] or order[:1]
    rest = [m for m in order if m not in first]
    return PagePlan(methods=tuple(first + rest), at_once=len(first))


def notice_method(person: Person) -> ContactMethod:
    """How reminders and notices reach someone: their first method that is not a
    phone call (a call cannot carry a reminder well); a call only when that is all
    they have."""
    order = person.methods()
    for method in order:
        if method != ContactMethod.VOICE:
            return method
    return order[0]


def quiet_notice_method(person: Person, methods: Sequence[ContactMethod], paging: bool) -> ContactMethod | None:
    """How a reminder or notice of an incident reaches someone, following what a page of
    its severity would do now (``routing.notice_methods``):

    - ``paging``: the person's first method (in their order) among ``methods`` that is
      not a phone call; a text when only a call is among them; with none of them, their
      usual notice method (a page of theirs would fall back to it too);
    - not ``paging`` (a SEV-4 under the default policy, or a paging rule that waits for
      business hours or pages nobody at this hour): email only, and None for someone
      without an address: such a notice must not buzz a phone.
    """
    order = person.methods()
    if not paging:
        return ContactMethod.EMAIL if ContactMethod.EMAIL in order else None
    for method in order:
        if method in methods and method != ContactMethod.VOICE:
            return method
    if ContactMethod.VOICE in methods and ContactMethod.SMS in order:
        return ContactMethod.SMS
    return notice_method(person)


def page_key(number: int, slot: str, person: str, attempt: int, method: str) -> str:
    """The idempotency key of one page attempt: one delivery per key, ever."""
    return f"incident-{number}/{slot}/{person}/{attempt}-{method}"


# --- phone numbers ---------------------------------------------------------------------


def number_digits(number: str) -> str:
    """The digits of a phone number, so that '+1 (500) 555-0006' and '+15005550006' match."""
    return re.sub(r"\D", "", number or "")


def mask_contact(contact: str) -> str:
    """Keep just enough of a phone number or address to tell them apart in a log."""
    if "@" in contact:
        local, _, domain = contact.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = re.sub(r"\D", "", contact)
    return f"***{digits[-4:]}" if len(digits) >= 4 else "***"


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(r"\+?\(?\d[\d\s().\-/]{5,}\d")


def mask_contacts_in(text: str) -> str:
    """``text`` with every email address and phone-number-like run of 7 or more digits masked
    as ``mask_contact`` does (for free text that may carry a customer's contact details)."""

    def phone(match: re.Match[str]) -> str:
        return mask_contact(match.group()) if len(re.sub(r"\D", "", match.group())) >= 7 else match.group()

    return _PHONE.sub(phone, _EMAIL.sub(lambda m: mask_contact(m.group()), text))


def same_number(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    da, db = number_digits(a), number_digits(b)
    return bool(da) and da == db


def people_by_number(policy: Policy) -> dict[str, str | None]:
    """Phone digits -> person id, from every person's sms and phone numbers.

    A number shared by several people maps to None: a reply from it cannot say
    who is answering, so it acknowledges nothing."""
    owners: dict[str, str | None] = {}
    for pid, person in policy.people.items():
        for number in {number_digits(n) for n in (person.sms, person.phone) if n}:
            if not number:
                continue
            owners[number] = pid if owners.get(number, pid) == pid else None
    return owners


def contact_ref(method: str, contact: str) -> str:
    """A stable, non-reversible handle for one phone number or address on one method,
    used to cap and bundle pages without storing the number again."""
    canon = number_digits(contact) if method in (ContactMethod.SMS, ContactMethod.VOICE) else contact.strip().lower()
    return hashlib.sha256(f"{method}:{canon}".encode()).hexdigest()[:32]


# --- SMS replies -----------------------------------------------------------------------


class SmsAction(StrEnum):
    ACK = "ack"
    ACK_ALL = "ack_all"
    ESCALATE = "escalate"
    CARRIER = "carrier"
    """STOP, START, HELP and friends: Twilio and the carrier answer those; warroom must not."""
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SmsCommand:
    action: SmsAction
    number: int | None = None
    """The incident named in the reply; None means the last one paged to the sender."""


_ACK_WORDS = {"ack", "a", "acknowledge"}
_ESC_WORDS = {"esc", "e", "escalate"}
_CARRIER_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "start", "unstop", "help", "info"}
_INCIDENT = re.compile(r"^#?(\d{1,12})$")
MAX_SMS_COMMAND = 160


def parse_sms(body: str) -> SmsCommand:
    """Read a reply: ``ack``/``a``, ``ack 42``/``42``/``#42``, ``esc 42``, ``ack all``.

    Case, surrounding blanks and punctuation at the end do not matter; anything
    else is UNKNOWN (the sender gets a short help text)."""
    text = " ".join(body.strip().lower().split()).rstrip(".!")
    if not text or len(text) > MAX_SMS_COMMAND:
        return SmsCommand(SmsAction.UNKNOWN)
    words = text.split(" ")
    if len(words) == 1 and words[0] in _CARRIER_WORDS:
        return SmsCommand(SmsAction.CARRIER)
    if len(words) == 1 and (m := _INCIDENT.match(words[0])):
        return SmsCommand(SmsAction.ACK, int(m.group(1)))
    head, rest = words[0], words[1:]
    if head in _ACK_WORDS:
        if not rest:
            return SmsCommand(SmsAction.ACK)
        if rest == ["all"]:
            return SmsCommand(SmsAction.ACK_ALL)
        if len(rest) == 1 and (m := _INCIDENT.match(rest[0])):
            return SmsCommand(SmsAction.ACK, int(m.group(1)))
    if head in _ESC_WORDS:
        if not rest:
            return SmsCommand(SmsAction.ESCALATE)
        if len(rest) == 1 and (m := _INCIDENT.match(rest[0])):
            return SmsCommand(SmsAction.ESCALATE, int(m.group(1)))
    return SmsCommand(SmsAction.UNKNOWN)


# --- delivery status callbacks -----------------------------------------------------------


class Delivery(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class DeliveryOutcome:
    outcome: Delivery
    status: str
    """The provider's word for it (undelivered, no-answer, ...), kept for the record."""
    detail: str


_SMS_FAILED = {"failed", "undelivered"}
_CALL_FAILED = {"busy", "no-answer", "failed"}


def delivery_outcome(params: dict[str, str]) -> DeliveryOutcome | None:
    """What a Twilio status callback means for a page; None for interim states
    (queued, sending, ringing, ...) that decide nothing."""
    if params.get("MessageSid") and "MessageStatus" in params:
        status = params["MessageStatus"].strip().lower()
        code = params.get("ErrorCode", "").strip()
        if status in _SMS_FAILED:
            return DeliveryOutcome(Delivery.FAILED, status, f"{status} (error {code})" if code else status)
        if status in {"delivered", "read"}:
            return DeliveryOutcome(Delivery.DELIVERED, status, status)
        return None
    if params.get("CallSid") and "CallStatus" in params:
        status = params["CallStatus"].strip().lower()
        if status in _CALL_FAILED:
            return DeliveryOutcome(Delivery.FAILED, status, f"call {status}")
        if status == "completed":
            answered_by = params.get("AnsweredBy", "").strip().lower()
            if answered_by.startswith(("machine", "fax")):
                return DeliveryOutcome(Delivery.FAILED, "machine", f"call answered by a machine ({answered_by})")
            return DeliveryOutcome(Delivery.DELIVERED, status, "call answered")
        return None
    return None
