"""Pure rules of the incident channel: names, the command grammar, signatures, the pinned text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from warroom.models.chat import (
    CommandProblem,
    RelaySnapshot,
    channel_name,
    links_for,
    numbered_name,
    parse_command,
    slack_request_problem,
    slack_signature,
    status_blocks,
    status_text,
    verify_webhook,
    webhook_signature,
)
from warroom.models.incident import Deadline, Role

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_800_000_000


@pytest.mark.parametrize(
    ("number", "title", "expected"),
    [
        (42, "DNS resolution failing", "inc-42-dns-resolution-failing"),
        (7, "Control panel: 502s for ALL users!!", "inc-7-control-panel-502s-for-all-users"),
        (3, "Überlastung der Datenbank", "inc-3-berlastung-der-datenbank"),
        (9, "???", "inc-9"),
        (12, "snake_case and   spaces", "inc-12-snake_case-and-spaces"),
    ],
)
def test_channel_names_follow_slack_rules(number: int, title: str, expected: str) -> None:
    assert channel_name(number, title) == expected


def test_long_titles_are_cut_to_80_characters_without_a_trailing_dash() -> None:
    name = channel_name(2**31 - 1, "a" * 60 + " " + "b" * 60)
    assert len(name) <= 80
    assert name.startswith("inc-2147483647-aaa")
    assert not name.endswith(("-", "_"))
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    again = numbered_name(name, 2)
    assert len(again) <= 80 and again.endswith("-2")


@pytest.mark.parametrize(
    ("text", "verb", "number", "fields"),
    [
        ("ack", "ack", None, {}),
        ("42 ack", "ack", 42, {}),
        ("#42 status DNS is back for most customers", "status", 42, {"text": "DNS is back for most customers"}),
        ("sev 2", "sev", None, {"severity": 2}),
        ("sev SEV-1", "sev", None, {"severity": 1}),
        ("role ic <@U024BE7LH|bob>", "role", None, {"role": Role.INCIDENT_COMMANDER, "person": "U024BE7LH"}),
        ("role scribe @erin", "role", None, {"role": Role.SCRIBE, "person": "erin"}),
        ("resolve Rolled back the resolver config", "resolve", None, {"text": "Rolled back the resolver config"}),
        ("note customers on EU only", "note", None, {"text": "customers on EU only"}),
        ("", "help", None, {}),
    ],
)
def test_command_grammar(text: str, verb: str, number: int | None, fields: dict[str, object]) -> None:
    cmd = parse_command(text)
    assert (cmd.verb, cmd.number) == (verb, number)
    for name, value in fields.items():
        assert getattr(cmd, name) == value


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("sev 5", "severity from 1 to 4"),
        ("status", "say what the update is"),
        ("role boss @erin", "name a role"),
        ("resolve", "what restored service"),
        ("reboot everything", "not a warroom command"),
        ("99999999999 ack", "not an incident number"),
    ],
)
def test_bad_commands_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(CommandProblem, match=says):
        parse_command(text)


def test_slack_signature_matches_slacks_documented_example() -> None:
    # The example of https://api.slack.com/authentication/verifying-requests-from-slack
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
            b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
            b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
            b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert slack_signature(SECRET, "1531420618", body) == expected
    assert slack_request_problem(SECRET, "1531420618", expected, body, now=1531420618 + 10) is None


def test_forged_stale_and_unsigned_slack_requests_are_refused() -> None:
    body = b"text=ack&user_id=U1"
    good = slack_signature(SECRET, str(NOW), body)
    assert slack_request_problem(SECRET, str(NOW), good, body, now=NOW + 299) is None
    assert "does not match" in (slack_request_problem(SECRET, str(NOW), good, body + b"x", now=NOW) or "")
    assert "does not match" in (slack_request_problem("another-secret", str(NOW), good, body, now=NOW) or "")
    assert "five minutes" in (slack_request_problem(SECRET, str(NOW), good, body, now=NOW + 301) or "")
    assert "five minutes" in (slack_request_problem(SECRET, str(NOW), good, body, now=NOW - 301) or "")
    assert "missing" in (slack_request_problem(SECRET, None, good, body, now=NOW) or "")
    assert "not a number" in (slack_request_problem(SECRET, "soon", good, body, now=NOW) or "")


def test_webhook_signature_verifies_only_the_same_body_secret_and_a_fresh_time() -> None:
    body = b'{"id":"incident-1/timeline-1"}'
    sig = webhook_signature("endpoint-secret-123456", str(NOW), body)
    assert sig.startswith("sha256=")
    assert verify_webhook("endpoint-secret-123456", str(NOW), sig, body, now=NOW + 5)
    assert not verify_webhook("endpoint-secret-123456", str(NOW), sig, body + b" ", now=NOW)
    assert not verify_webhook("other-secret-12345678", str(NOW), sig, body, now=NOW)
    assert not verify_webhook("endpoint-secret-123456", str(NOW), sig, body, now=NOW + 600)


def test_the_pinned_status_names_status_severity_roles_deadlines_and_links() -> None:
    snap = RelaySnapshot(
        number=42, title="DNS resolution failing", severity="SEV-1", status="triggered",
        declared_at=datetime(2026, 12, 3, 2, 0, tzinfo=UTC),
        roles={Role.INCIDENT_COMMANDER.value: "bob"},
        deadlines=[Deadline(name="acknowledge", at=datetime(2026, 12, 3, 2, 10, tzinfo=UTC))],
    )
    links = links_for(42, "https://warroom.example", "https://temporal.example", "default")
    text = status_text(snap, links)
    for part in ("#42 DNS resolution failing", "triggered", "SEV-1", "Incident Commander: bob",
                 "acknowledge by 02:10:00 UTC", "https://warroom.example/api/incidents/42",
                 "https://temporal.example/namespaces/default/workflows/incident-42", "Runbooks"):
        assert part in text
    actions = [b for b in status_blocks(snap, links) if b["type"] == "actions"]
    assert actions, "a triggered incident offers Acknowledge"
    resolved = snap.model_copy(update={"status": "resolved"})
    assert not [b for b in status_blocks(resolved, links) if b["type"] == "actions"]
