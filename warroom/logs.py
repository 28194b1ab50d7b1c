"""Logging set-up for every process: one line per event, incident id when known."""

from __future__ import annotations

import logging
import sys


class _IncidentFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        incident = getattr(record, "incident", None)
        record.incident_tag = f" incident=#{incident}" if incident is not None else ""
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_IncidentFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s%(incident_tag)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
