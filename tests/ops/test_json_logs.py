"""Structured logs: one JSON object per line, with the incident id on every line about one."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator

import pytest
from temporalio.testing import ActivityEnvironment

from warroom.logs import configure_logging


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    uvicorn = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate, logging.getLogger(n).level)
               for n in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    for name in uvicorn:  # a server started by another test may have raised them
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, (handlers, propagate, level) in uvicorn.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate
        logging.getLogger(name).setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_incident() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    logging.getLogger("warroom.api").info("ack accepted for %s", "alice", extra={"incident": 12, "via": "sms"})
    logging.getLogger("warroom.api").info("no incident here")
    first, second = json_lines(out)
    assert first["message"] == "ack accepted for alice"
    assert (first["level"], first["logger"], first["incident"], first["via"]) == ("info", "warroom.api", 12, "sms")
    assert str(first["ts"]).endswith("+00:00")
    assert "incident" not in second


def test_lines_written_inside_an_activity_carry_its_incident() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="incident-77")
    env.run(lambda: logging.getLogger("warroom.notify").info("paging alice"))
    assert json_lines(out)[0]["incident"] == 77



@pytest.mark.parametrize(
    ("workflow_id", "incident"),
    [
        ("incident-42-runbook-3", 42),  # a runbook run's steps
        ("incident-42-action-items", 42),  # the postmortem's action-items tracker
        ("statuspage-fanout-incident-42-update-3", 42),  # telling subscribers of an update
        ("statuspage-fanout-subscriber-7-confirm-abc", None),  # a subscription: no incident
        ("heartbeat-incident-42", None),
    ],
)
def test_lines_of_an_incidents_other_workflows_carry_it_too(workflow_id: str, incident: int | None) -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id)
    env.run(lambda: logging.getLogger("warroom.runbooks").info("step done"))
    logging.getLogger("temporalio.workflow").warning("retrying", extra={"temporal_workflow": {"workflow_id": workflow_id}})
    in_activity, from_sdk = json_lines(out)
    assert in_activity.get("incident") == incident
    assert from_sdk.get("incident") == incident

def test_sdk_records_and_access_lines_carry_the_incident() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    logging.getLogger("temporalio.workflow").warning(
        "retrying", extra={"temporal_workflow": {"workflow_id": "incident-5", "run_id": "r"}}
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST", "/api/incidents/31/acknowledge", "1.1", 200
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/api/incidents?status=open", "1.1", 200
    )
    sdk, access, listing = json_lines(out)
    assert sdk["incident"] == 5
    assert access["incident"] == 31
    assert "incident" not in listing


def test_exceptions_are_kept_in_the_line() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    try:
        raise RuntimeError("provider said no")
    except RuntimeError:
        logging.getLogger("warroom.activities").exception("send failed", extra={"incident": 3})
    line = json_lines(out)[0]
    assert "RuntimeError: provider said no" in str(line["exception"])


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    terminal, pipe = FakeTerminal(), io.StringIO()
    configure_logging("INFO", "auto", stream=terminal)
    logging.getLogger("warroom.worker").info("paged", extra={"incident": 8})
    configure_logging("INFO", "auto", stream=pipe)
    logging.getLogger("warroom.worker").info("paged", extra={"incident": 8})
    assert " INFO warroom.worker incident=#8: paged" in terminal.getvalue()
    assert json_lines(pipe)[0]["incident"] == 8


def test_text_lines_escape_control_characters_so_user_text_cannot_forge_a_line() -> None:
    out = FakeTerminal()
    configure_logging("INFO", "text", stream=out)
    title = "disk full\r\n2026-12-04 08:00:00,000 INFO warroom.api: alice acknowledged everything\x1b[2J\x07\u2028"
    logging.getLogger("warroom.api").info("alert %r: %s", "t", title, extra={"incident": 4})
    logging.getLogger("warroom.api").info("note:\tline one\nline two")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith(
        "INFO warroom.api incident=#4: alert 't': disk full\\r\\n2026-12-04 08:00:00,000 INFO warroom.api: "
        "alice acknowledged everything\\x1b[2J\\x07\\u2028"
    )
    assert lines[1].endswith("note:\\tline one\\nline two")
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_text_lines_keep_a_tracebacks_lines() -> None:
    out = FakeTerminal()
    configure_logging("INFO", "text", stream=out)
    try:
        raise RuntimeError("provider said no")
    except RuntimeError:
        logging.getLogger("warroom.activities").exception("send failed")
    text = out.getvalue()
    assert "warroom.activities: send failed\nTraceback (most recent call last):\n" in text
    assert text.rstrip().endswith("RuntimeError: provider said no")
