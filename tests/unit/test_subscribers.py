"""Subscriber rules: contacts, who hears of what, signed links and SMS codes."""

from datetime import UTC, datetime

import pytest

from warroom.models.notices import incident_notice
from warroom.models.subscribers import (
    CONFIRM,
    UNSUBSCRIBE,
    PublicEvent,
    PublicEventKind,
    SubscriberChannel,
    list_unsubscribe_headers,
    normalise_contact,
    sign,
    sms_code,
    verify,
    wants,
)

EMAIL, SMS = SubscriberChannel.EMAIL, SubscriberChannel.SMS


@pytest.mark.parametrize(
    ("channel", "raw", "expected"),
    [
        (EMAIL, " Ann.Lee@Example.COM ", "ann.lee@example.com"),
        (SMS, "+44 20 7946 0000", "+442079460000"),
        (SMS, "0044 (20) 7946-0000", "+442079460000"),
        (SMS, "+1.415.555.0100", "+14155550100"),
    ],
)
def test_contacts_are_normalised(channel: SubscriberChannel, raw: str, expected: str) -> None:
    assert normalise_contact(channel, raw) == expected


@pytest.mark.parametrize(
    ("channel", "raw", "reason"),
    [
        (EMAIL, "not-an-address", "email address"),
        (EMAIL, "a@b", "email address"),
        (EMAIL, "<script>@x.com", "email address"),
        (SMS, "020 7946 0000", "international form"),
        (SMS, "+12", "international form"),
        (SMS, "+44 20 7946 000O", "international form"),
    ],
)
def test_bad_contacts_are_refused_with_the_reason(channel: SubscriberChannel, raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise_contact(channel, raw)


@pytest.mark.parametrize(
    ("subscribed", "event", "told"),
    [
        ([], ["dns"], True),  # everything
        (["dns"], ["dns", "email"], True),
        (["billing"], ["dns", "email"], False),
        (["billing"], [], True),  # an incident on no known component concerns everyone
    ],
)
def test_who_hears_of_an_event(subscribed: list[str], event: list[str], told: bool) -> None:
    assert wants(subscribed, event) is told


def test_signed_tokens_verify_only_for_their_secret_purpose_and_content() -> None:
    token = sign("s3cret", UNSUBSCRIBE, 42, "abcd")
    assert verify("s3cret", UNSUBSCRIBE, token) == (42, "abcd")
    assert verify("s3cret", CONFIRM, token) is None
    assert verify("other", UNSUBSCRIBE, token) is None
    sub, nonce, sig = token.split(".")
    assert verify("s3cret", UNSUBSCRIBE, f"43.{nonce}.{sig}") is None
    assert verify("s3cret", UNSUBSCRIBE, f"{sub}.{nonce}.{sig[:-1]}A" if not sig.endswith("A") else f"{sub}.{nonce}.{sig[:-1]}B") is None
    assert verify("s3cret", UNSUBSCRIBE, "garbage") is None


def test_sms_codes_are_six_digits_and_change_with_the_nonce() -> None:
    code = sms_code("s3cret", 7, "n1")
    assert len(code) == 6 and code.isdigit()
    assert sms_code("s3cret", 7, "n1") == code
    assert len({sms_code("s3cret", 7, f"n{i}") for i in range(20)}) > 15


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://status.example.com/status/unsubscribe?token=abc",
         {"List-Unsubscribe": "<https://status.example.com/status/unsubscribe?token=abc>",
          "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}),
        # RFC 8058 promises one-click only for HTTPS links; RFC 2369's header alone otherwise
        ("http://127.0.0.1:8000/status/unsubscribe?token=abc",
         {"List-Unsubscribe": "<http://127.0.0.1:8000/status/unsubscribe?token=abc>"}),
    ],
)
def test_list_unsubscribe_headers(url: str, expected: dict[str, str]) -> None:
    assert list_unsubscribe_headers(url) == expected


@pytest.mark.parametrize(
    ("kind", "phase", "labelled"),
    [
        (PublicEventKind.UPDATE, "monitoring", True),
        (PublicEventKind.UPDATE, None, False),  # an event from before phases
        (PublicEventKind.RESOLVED, None, False),
    ],
)
def test_a_subscriber_hears_the_phase_an_update_put_the_incident_in(
    kind: PublicEventKind, phase: str | None, labelled: bool
) -> None:
    event = PublicEvent(key="incident-7/update-3", kind=kind, incident_number=7, title="Email is delayed",
                        message="Mail flows again.", at=datetime(2026, 11, 30, tzinfo=UTC), phase=phase)
    for channel in SubscriberChannel:
        _, text = incident_notice(event, channel, "Example status", "https://s/incidents/7", "https://s/u", [])
        assert ("Monitoring - Mail flows again." in text) == labelled
        assert text.count("Mail flows again.") == 1
