"""Logging set-up for every process: one line per event, the incident id whenever known.

Two formats: ``text`` for a person at a terminal, ``json`` (one object per line)
for log collectors. ``auto`` picks text on a terminal and JSON otherwise, so a
container or a systemd unit logs JSON without being told.

The incident is found, in order: an ``incident`` extra given by the caller
(``log.info(..., extra={"incident": 12})``), the workflow id of the activity
being run, the workflow or activity details the Temporal SDK attaches to its
own records, and, for an access-log line, the ``/api/incidents/<n>`` path.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from temporalio import activity

from warroom.models.ids import incident_number_from_workflow_id

_INCIDENT_PATH = re.compile(r"/api/incidents/(\d+)(?:/|\?|$)")
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})))
_NOT_EXTRAS = frozenset({"incident", "incident_tag", "message", "asctime", "color_message"})


def incident_of(record: logging.LogRecord) -> int | None:
    """The incident a log record concerns, or None."""
    explicit = getattr(record, "incident", None)
    if explicit is not None:
        try:
            return int(explicit)
        except (TypeError, ValueError):
            return None
    if activity.in_activity():
        number = incident_number_from_workflow_id(activity.info().workflow_id or "")
        if number is not None:
            return number
    for key in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, key, None)
        if isinstance(details, dict):
            number = incident_number_from_workflow_id(str(details.get("workflow_id", "")))
            if number is not None:
                return number
    if record.name == "uvicorn.access" and isinstance(record.args, tuple):
        for arg in record.args:
            match = _INCIDENT_PATH.search(str(arg))
            if match:
                return int(match.group(1))
    return None


class _IncidentFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.incident = incident_of(record)
        record.incident_tag = f" incident=#{record.incident}" if record.incident is not None else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, incident, and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "incident", None) is not None:
            entry["incident"] = record.incident
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key in entry or key in _NOT_EXTRAS:
                continue
            entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(incident_tag)s: %(message)s"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_controls(text: str) -> str:
    """``text`` with CR, LF, ESC and every other control character written as an escape
    (``\\r``, ``\\n``, ``\\x1b``), so it stays on its one line and cannot drive the terminal."""
    return _CONTROL.sub(_escaped, text)


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, with the message (alert titles, names, notes: text from outside)
    escaped: a title with a line break and a timestamp in it cannot print a fake log line,
    nor an ESC sequence clear the terminal. A traceback keeps its lines."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return TEXT_FORMAT % {**vars(record), "message": escape_controls(record.message)}


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Route every logger (uvicorn's and Temporal's too) through one handler."""
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "text" if out.isatty() else "json"
    handler = logging.StreamHandler(out)
    handler.addFilter(_IncidentFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn installs its own text handlers; send its lines through ours instead.
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The provider SDKs log every request: Twilio at INFO (URLs, headers), SendGrid's
    # HTTP client at DEBUG (payloads with addresses, and its Authorization header).
    # warroom logs each send itself, masked; theirs stay quiet even at DEBUG.
    for noisy in ("twilio", "python_http_client", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
