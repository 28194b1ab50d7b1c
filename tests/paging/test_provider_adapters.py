"""The Twilio and SendGrid adapters, with the real SDKs talking HTTP to local fakes."""

from __future__ import annotations

import logging

import pytest

from tests.fakes import AUTH_TOKEN, FROM_EMAIL, FROM_NUMBER, SENDGRID_KEY
from tests.paging.conftest import PUBLIC_URL, provider_settings
from warroom.activities.notify import ConsoleChannel, PermanentDeliveryError, TransientDeliveryError
from warroom.logs import configure_logging
from warroom.models.incident import NotificationKind, NotificationRequest
from warroom.models.policy import Person
from warroom.worker import build_notifiers
from warroom.settings import Settings

ALICE = Person(name="Alice Ng", sms="+15005550006", phone="+15005550016", email="alice@example.com")


def request(channel: str, text: str = "warroom #42 SEV-1: DNS down. Reply 'ack 42' to take it.") -> NotificationRequest:
    return NotificationRequest(
        key=f"incident-42/step-0/alice/0-{channel}",
        incident_number=42,
        person_id="alice",
        person=ALICE,
        channel=channel,
        kind=NotificationKind.PAGE,
        subject="[SEV-1] #42 DNS down",
        text=text,
    )


@pytest.fixture
def notifiers(tmp_path, fake_twilio, fake_sendgrid):
    return build_notifiers(provider_settings(tmp_path, fake_twilio, fake_sendgrid))


def test_without_credentials_every_method_goes_to_the_console(tmp_path):
    registry = build_notifiers(Settings(_env_file=None, data_dir=tmp_path))
    assert all(isinstance(registry.for_method(m), ConsoleChannel) for m in ("sms", "voice", "email"))


def test_voice_needs_the_public_url_for_its_words_so_without_it_only_sms_uses_twilio(tmp_path, fake_twilio,
                                                                                      fake_sendgrid):
    registry = build_notifiers(provider_settings(tmp_path, fake_twilio, fake_sendgrid, public_base_url=None))
    assert registry.for_method("sms").provider == "twilio"
    assert registry.for_method("voice").provider == "console"


async def test_sms_goes_out_through_the_messages_api_with_a_status_callback(notifiers, fake_twilio):
    sid = await notifiers.for_method("sms").send(ALICE.sms, request("sms"))
    sent = await fake_twilio.expect("sms", to=ALICE.sms)
    assert sid == sent.sid and sid.startswith("SM")
    assert sent.params["From"] == FROM_NUMBER
    assert sent.params["Body"] == "warroom #42 SEV-1: DNS down. Reply 'ack 42' to take it."
    assert sent.params["StatusCallback"] == f"{PUBLIC_URL}/api/webhooks/twilio/status"


async def test_a_call_fetches_its_words_from_warroom_and_reports_how_it_ended(notifiers, fake_twilio):
    sid = await notifiers.for_method("voice").send(ALICE.phone, request("voice"))
    call = await fake_twilio.expect("call", to=ALICE.phone)
    assert sid == call.sid and sid.startswith("CA")
    assert call.params["From"] == FROM_NUMBER
    assert call.params["Url"] == f"{PUBLIC_URL}/api/webhooks/twilio/voice"
    assert call.params["Method"] == "POST"
    assert call.params["StatusCallback"] == f"{PUBLIC_URL}/api/webhooks/twilio/status"
    assert call.params["StatusCallbackEvent"] == "completed"


async def test_email_goes_out_through_sendgrid_with_the_idempotency_key(notifiers, fake_sendgrid):
    message_id = await notifiers.for_method("email").send(ALICE.email, request("email"))
    mail = await fake_sendgrid.expect("email", to=ALICE.email)
    assert message_id == mail.sid
    assert mail.params["subject"] == "[SEV-1] #42 DNS down"
    assert mail.params["from"] == {"email": FROM_EMAIL}
    assert mail.params["content"] == [{"type": "text/plain", "value": request("email").text}]
    assert mail.params["custom_args"] == {"warroom_key": "incident-42/step-0/alice/0-email"}
    assert mail.params["headers"] == {}  # a page is nothing to unsubscribe from


async def test_a_message_with_an_unsubscribe_link_carries_list_unsubscribe_headers(notifiers, fake_sendgrid):
    req = request("email").model_copy(update={"unsubscribe_url": "http://status.example.test/status/unsubscribe?token=t"})
    await notifiers.for_method("email").send(ALICE.email, req)
    mail = await fake_sendgrid.expect("email", to=ALICE.email)
    # Plain HTTP: the link, but no one-click promise (RFC 8058 wants HTTPS for that).
    assert mail.params["headers"] == {"List-Unsubscribe": "<http://status.example.test/status/unsubscribe?token=t>"}


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, 21211, PermanentDeliveryError),  # invalid 'To' number
        (400, 21610, PermanentDeliveryError),  # the recipient replied STOP
        (403, 21408, PermanentDeliveryError),  # region not enabled
        (500, None, TransientDeliveryError),
        (503, None, TransientDeliveryError),
        (429, 20429, TransientDeliveryError),
    ],
)
async def test_twilio_errors_are_permanent_for_4xx_and_transient_for_5xx_and_429(
    notifiers, fake_twilio, status, code, error
):
    fake_twilio.fail("sms", status, code=code, message="scripted")
    with pytest.raises(error, match=str(status)):
        await notifiers.for_method("sms").send(ALICE.sms, request("sms"))
    await fake_twilio.expect("sms", to=ALICE.sms, answered=status)


async def test_a_wrong_twilio_token_is_permanent(tmp_path, fake_twilio, fake_sendgrid):
    registry = build_notifiers(provider_settings(tmp_path, fake_twilio, fake_sendgrid, twilio_auth_token="nope"))
    with pytest.raises(PermanentDeliveryError, match="401"):
        await registry.for_method("sms").send(ALICE.sms, request("sms"))


async def test_a_twilio_that_does_not_answer_in_time_is_transient(tmp_path, fake_twilio, fake_sendgrid):
    registry = build_notifiers(
        provider_settings(tmp_path, fake_twilio, fake_sendgrid, provider_timeout_seconds=0.3)
    )
    fake_twilio.stall("sms", 1.0)
    with pytest.raises(TransientDeliveryError, match="in time"):
        await registry.for_method("sms").send(ALICE.sms, request("sms"))
    # The stalled request did reach the fake: exactly the ambiguity the activity's
    # claimed row exists for (see test_send_activity).
    await fake_twilio.expect("sms", to=ALICE.sms)


async def test_an_unreachable_provider_is_transient(tmp_path, fake_twilio, fake_sendgrid):
    registry = build_notifiers(provider_settings(
        tmp_path, fake_twilio, fake_sendgrid, twilio_api_base="http://127.0.0.1:9", sendgrid_api_base="http://127.0.0.1:9"
    ))
    with pytest.raises(TransientDeliveryError, match="cannot reach Twilio"):
        await registry.for_method("sms").send(ALICE.sms, request("sms"))
    with pytest.raises(TransientDeliveryError, match="cannot reach SendGrid"):
        await registry.for_method("email").send(ALICE.email, request("email"))


@pytest.mark.parametrize("method", ["sms", "voice"])
async def test_warroom_never_pages_its_own_number(notifiers, fake_twilio, method):
    with pytest.raises(PermanentDeliveryError, match="own Twilio number"):
        await notifiers.for_method(method).send("+1 (500) 555-0001", request(method))
    await fake_twilio.expect_nothing(0.2)


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, PermanentDeliveryError), (401, PermanentDeliveryError), (500, TransientDeliveryError),
     (429, TransientDeliveryError)],
)
async def test_sendgrid_errors_are_permanent_for_4xx_and_transient_for_5xx_and_429(
    notifiers, fake_sendgrid, status, error
):
    fake_sendgrid.fail("email", status, message="scripted")
    with pytest.raises(error, match=str(status)):
        await notifiers.for_method("email").send(ALICE.email, request("email"))
    await fake_sendgrid.expect("email", answered=status)


async def test_a_sendgrid_that_does_not_answer_in_time_is_transient(tmp_path, fake_twilio, fake_sendgrid):
    registry = build_notifiers(
        provider_settings(tmp_path, fake_twilio, fake_sendgrid, provider_timeout_seconds=0.3)
    )
    fake_sendgrid.stall("email", 1.0)
    with pytest.raises(TransientDeliveryError, match="in time"):
        await registry.for_method("email").send(ALICE.email, request("email"))
    await fake_sendgrid.expect("email")


async def test_no_log_line_carries_a_full_number_an_address_or_a_secret(notifiers, fake_twilio, fake_sendgrid,
                                                                        caplog):
    configure_logging("DEBUG")
    logging.getLogger().addHandler(caplog.handler)
    try:
        await notifiers.for_method("sms").send(ALICE.sms, request("sms"))
        await notifiers.for_method("voice").send(ALICE.phone, request("voice"))
        await notifiers.for_method("email").send(ALICE.email, request("email"))
        fake_twilio.fail("sms", 400, code=21211, message=f"The 'To' number {ALICE.sms} is not valid")
        with pytest.raises(PermanentDeliveryError):
            await notifiers.for_method("sms").send(ALICE.sms, request("sms"))
    finally:
        logging.getLogger().removeHandler(caplog.handler)
        configure_logging("WARNING")
    for _ in range(2):
        await fake_twilio.expect("sms")
    await fake_twilio.expect("call")
    await fake_sendgrid.expect("email")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "***0006" in logged and "a***@example.com" in logged  # warroom's own, masked, lines
    for secret in (ALICE.sms, ALICE.phone, "5005550006", ALICE.email, AUTH_TOKEN, SENDGRID_KEY):
        assert secret not in logged
