"""Severity levels and how monitoring labels map onto them."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    SEV1 = "SEV-1"
    SEV2 = "SEV-2"
    SEV3 = "SEV-3"
    SEV4 = "SEV-4"

    @property
    def rank(self) -> int:
        """1 for SEV-1 (most severe) .. 4 for SEV-4."""
        return int(self.value[-1])

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Severity.SEV1: "critical",
    Severity.SEV2: "major",
    Severity.SEV3: "minor",
    Severity.SEV4: "low",
}

_FROM_LABEL = {
    "critical": Severity.SEV1,
    "major": Severity.SEV2,
    "high": Severity.SEV2,
    "error": Severity.SEV2,
    "minor": Severity.SEV3,
    "warning": Severity.SEV3,
    "info": Severity.SEV4,
    "low": Severity.SEV4,
}


def parse_severity(text: str) -> Severity:
    """Accept ``SEV-1``, ``sev1``, ``SEV1`` or ``1``; raise ValueError otherwise."""
    cleaned = text.strip().upper().replace("SEV", "").lstrip("-_ ")
    if cleaned in {"1", "2", "3", "4"}:
        return Severity(f"SEV-{cleaned}")
    raise ValueError(f"unknown severity '{text}': use SEV-1, SEV-2, SEV-3 or SEV-4")


def severity_from_labels(labels: dict[str, str], default: Severity = Severity.SEV3) -> Severity:
    """Map alert labels to a severity.

    ``warroom_severity: SEV-n`` wins; otherwise the conventional ``severity``
    label is mapped (critical -> SEV-1, major/high/error -> SEV-2,
    minor/warning -> SEV-3, info/low -> SEV-4). Anything else falls back to
    ``default`` rather than guessing high or low.
    """
    override = labels.get("warroom_severity")
    if override:
        try:
            return parse_severity(override)
        except ValueError:
            pass
    return _FROM_LABEL.get(labels.get("severity", "").strip().lower(), default)


def most_severe(*severities: Severity) -> Severity:
    return min(severities, key=lambda s: s.rank)
