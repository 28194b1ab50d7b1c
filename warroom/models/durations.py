"""Durations written as policy data: ``90s``, ``10m``, ``48h``, ``2d`` or ``1h30m``."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = timedelta(days=3650)
"""Longer is a typo; it would also overflow the deadlines computed from it."""


def _bounded(seconds: float, value: Any) -> timedelta:
    if not math.isfinite(seconds) or seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"'{value}' is not a usable duration: at most 3650d")
    return timedelta(seconds=seconds)


def parse_duration(value: Any) -> timedelta:
    """Parse a policy duration. Plain numbers are seconds; strings need a unit."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration such as '10m' is required, not a boolean")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _bounded(value, value)
    if not isinstance(value, str):
        raise ValueError(f"a duration such as '10m' is required, got {type(value).__name__}")
    text = value.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"'{value}' is not a duration: use a number with s, m, h or d, e.g. '10m'")
    return _bounded(total, value)


def format_duration(delta: timedelta) -> str:
    """Render a duration the way people say it: ``15 min``, ``2 h 5 min``, ``48 h``, ``3 s``."""
    seconds = int(round(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if sec and not hours:
        parts.append(f"{sec} s")
    return " ".join(parts)


def format_wait(delta: timedelta) -> str:
    """How long until (or since) a date, for a list someone reads at a glance: in days and
    hours from three days on (``12 d 4 h``), as ``format_duration`` below that."""
    if delta < timedelta(days=3):
        return format_duration(delta)
    days, rest = divmod(int(delta.total_seconds()), 86400)
    hours = rest // 3600
    return f"{days} d {hours} h" if hours else f"{days} d"


def _serialize(delta: timedelta) -> float:
    return delta.total_seconds()


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(_serialize, return_type=float)]
"""A timedelta field that accepts policy strings and serialises as seconds."""
