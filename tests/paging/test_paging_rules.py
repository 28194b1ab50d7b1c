"""Pure paging rules: contact methods and their order, SMS replies, delivery callbacks."""

from __future__ import annotations

import pytest

from tests.conftest import fast_policy
from warroom.models import messages
from warroom.models.policy import ContactMethod, Person, PolicyError, load_policy, DEFAULT_POLICY_PATH
from warroom.models.paging import (
    Delivery,
    SmsAction,
    SmsCommand,
    contact_ref,
    delivery_outcome,
    notice_method,
    page_key,
    page_plan,
    parse_sms,
    people_by_number,
    same_number,
)
from warroom.models.severity import Severity

V, S, E = ContactMethod.VOICE, ContactMethod.SMS, ContactMethod.EMAIL
EVERYTHING = {"name": "Dana", "sms": "+15005550010", "phone": "+15005550011", "email": "dana@example.com"}


def test_issue_2_people_still_load_and_get_every_method_they_have_loudest_first():
    policy = load_policy(DEFAULT_POLICY_PATH)
    assert policy.people["alice"].methods() == [S, E]
    assert Person(**EVERYTHING).methods() == [V, S, E]


def test_contact_order_is_followed_and_methods_left_out_come_last():
    person = Person(**EVERYTHING, contact_order=["sms", "email"])
    assert person.methods() == [S, E, V]


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (["voice"], "contact_order: 'voice' needs 'phone' to be set"),
        (["sms", "sms"], "contact_order: a method is listed twice"),
        (["fax"], "contact_order.0"),
    ],
)
def test_a_contact_order_the_person_cannot_honour_is_refused_naming_the_key(order, message):
    with pytest.raises(PolicyError, match=message.replace("'", ".")):
        fast_policy(people={"alice": {"name": "A", "sms": "+15005550006", "contact_order": order}},
                    escalation={"levels": [{"notify": ["alice"]}]}, engineering_lead=None)


def test_page_methods_per_severity_refuse_an_empty_list():
    with pytest.raises(PolicyError, match="page_methods.SEV-1: give at least one"):
        fast_policy(page_methods={"SEV-1": []})


@pytest.mark.parametrize(
    ("severity", "person", "methods", "at_once"),
    [
        # default: SEV-1 calls and texts at once, then mails
        (Severity.SEV1, EVERYTHING, (V, S, E), 2),
        # SEV-2 texts; a call, then an email, are the fallbacks in the person's order
        (Severity.SEV2, EVERYTHING, (S, V, E), 1),
        # SEV-3 mails first, then the loud methods
        (Severity.SEV3, EVERYTHING, (E, V, S), 1),
        # a person without a phone: SEV-1 texts only, then mails
        (Severity.SEV1, {"name": "A", "sms": "+1", "email": "a@x"}, (S, E), 1),
        # a person with none of the severity's methods starts with their first one
        (Severity.SEV3, {"name": "A", "phone": "+1", "sms": "+2"}, (V, S), 1),
        # the person's own order decides the order within and after the first batch
        (Severity.SEV1, {**EVERYTHING, "contact_order": ["sms", "email", "voice"]}, (S, V, E), 2),
    ],
)
def test_page_plan(severity, person, methods, at_once):
    plan = page_plan(fast_policy(), Person(**person), severity)
    assert (plan.methods, plan.at_once) == (methods, at_once)


def test_page_methods_from_the_policy_replace_the_default_for_that_severity_only():
    policy = fast_policy(page_methods={"SEV-2": ["voice", "email"]})
    assert page_plan(policy, Person(**EVERYTHING), Severity.SEV2).first == (V, E)
    assert page_plan(policy, Person(**EVERYTHING), Severity.SEV1).first == (V, S)


def test_reminders_avoid_phone_calls_unless_that_is_all_there_is():
    assert notice_method(Person(**EVERYTHING)) == S
    assert notice_method(Person(name="A", phone="+1", email="a@x")) == E
    assert notice_method(Person(name="A", phone="+1")) == V


def test_page_key_names_incident_step_person_attempt_and_method():
    assert page_key(42, "step-3", "alice", 1, "voice") == "incident-42/step-3/alice/1-voice"


@pytest.mark.parametrize(
    ("body", "command"),
    [
        ("ack", SmsCommand(SmsAction.ACK)),
        ("  A ", SmsCommand(SmsAction.ACK)),
        ("Ack!", SmsCommand(SmsAction.ACK)),
        ("ack 42", SmsCommand(SmsAction.ACK, 42)),
        ("ACK #42", SmsCommand(SmsAction.ACK, 42)),
        ("a 7", SmsCommand(SmsAction.ACK, 7)),
        ("42", SmsCommand(SmsAction.ACK, 42)),
        ("#42", SmsCommand(SmsAction.ACK, 42)),
        ("esc 42", SmsCommand(SmsAction.ESCALATE, 42)),
        ("Escalate  42", SmsCommand(SmsAction.ESCALATE, 42)),
        ("esc", SmsCommand(SmsAction.ESCALATE)),
        ("ack all", SmsCommand(SmsAction.ACK_ALL)),
        ("STOP", SmsCommand(SmsAction.CARRIER)),
        ("help", SmsCommand(SmsAction.CARRIER)),
        ("ack 42 43", SmsCommand(SmsAction.UNKNOWN)),
        ("acknowledged, on it", SmsCommand(SmsAction.UNKNOWN)),
        ("ack forty-two", SmsCommand(SmsAction.UNKNOWN)),
        ("", SmsCommand(SmsAction.UNKNOWN)),
        ("4" * 13, SmsCommand(SmsAction.UNKNOWN)),
        ("x" * 500, SmsCommand(SmsAction.UNKNOWN)),
    ],
)
def test_sms_grammar(body, command):
    assert parse_sms(body) == command


def test_numbers_match_whatever_their_punctuation():
    assert same_number("+1 (500) 555-0006", "+15005550006")
    assert not same_number("+15005550006", "+15005550007")
    assert not same_number("", "")


def test_senders_map_to_people_and_a_shared_number_maps_to_nobody():
    policy = fast_policy(people={
        "alice": {"name": "A", "sms": "+15005550006", "phone": "+15005550016"},
        "bob": {"name": "B", "sms": "+15005550007"},
        "carol": {"name": "C", "phone": "+1 500 555 0007"},
        "erin": {"name": "E", "email": "e@x"},
    }, escalation={"levels": [{"notify": ["alice"]}]})
    owners = people_by_number(policy)
    assert owners["15005550006"] == "alice" and owners["15005550016"] == "alice"
    assert owners["15005550007"] is None


def test_contact_ref_hides_the_number_and_ignores_formatting():
    ref = contact_ref("sms", "+1 500 555 0006")
    assert ref == contact_ref("sms", "+15005550006") != contact_ref("voice", "+15005550006")
    assert "5550006" not in ref


@pytest.mark.parametrize(
    ("params", "outcome", "detail"),
    [
        ({"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"}, Delivery.FAILED,
         "undelivered (error 30003)"),
        ({"MessageSid": "SM1", "MessageStatus": "failed"}, Delivery.FAILED, "failed"),
        ({"MessageSid": "SM1", "MessageStatus": "delivered"}, Delivery.DELIVERED, "delivered"),
        ({"CallSid": "CA1", "CallStatus": "no-answer"}, Delivery.FAILED, "call no-answer"),
        ({"CallSid": "CA1", "CallStatus": "busy"}, Delivery.FAILED, "call busy"),
        ({"CallSid": "CA1", "CallStatus": "failed"}, Delivery.FAILED, "call failed"),
        ({"CallSid": "CA1", "CallStatus": "completed"}, Delivery.DELIVERED, "call answered"),
        ({"CallSid": "CA1", "CallStatus": "completed", "AnsweredBy": "machine_start"}, Delivery.FAILED,
         "call answered by a machine (machine_start)"),
    ],
)
def test_delivery_callbacks_that_decide_something(params, outcome, detail):
    result = delivery_outcome(params)
    assert result is not None and (result.outcome, result.detail) == (outcome, detail)


@pytest.mark.parametrize(
    "params",
    [
        {"MessageSid": "SM1", "MessageStatus": "queued"},
        {"MessageSid": "SM1", "MessageStatus": "sent"},
        {"CallSid": "CA1", "CallStatus": "ringing"},
        {"CallSid": "CA1", "CallStatus": "in-progress"},
        {"Body": "hello"},
    ],
)
def test_interim_delivery_callbacks_decide_nothing(params):
    assert delivery_outcome(params) is None


def test_a_bundle_names_every_incident_and_how_to_answer():
    subject, text = messages.bundle([(41, "[SEV-1] #41 DNS down"), (42, "[SEV-2] #42 Mail slow")])
    assert subject == "warroom: 2 incidents need you"
    assert "#41 DNS down" in text and "#42 Mail slow" in text and "ack all" in text


def test_the_workflow_and_the_paging_rules_import_no_provider_sdk_or_database():
    import subprocess
    import sys

    probe = (
        "import sys, warroom.workflows.incident, warroom.models.paging; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'twilio', 'sendgrid', 'sqlalchemy', 'requests'}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
