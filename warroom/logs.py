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
    # The provider SDKs log every request: Twilio at INFO (URLs, headers), SendGrid's
    # HTTP client at DEBUG (payloads with addresses, and its Authorization header).
    # warroom logs each send itself, masked; theirs stay quiet even at DEBUG.
    for noisy in ("twilio", "python_http_client", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
