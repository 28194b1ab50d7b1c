"""Prometheus Alertmanager webhook (payload version 4) -> incidents.

One incident per alert group: the group is mapped to an open incident in the
read model (a unique row), and the alerts reach the incident's workflow by
update-with-start, so a redelivery (Alertmanager in HA mode sends duplicates)
or a repeated notification joins the open incident instead of declaring a
second one, even when two deliveries race or Temporal was down the first time.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from warroom.api.schemas import check_instant
from warroom.models.incident import AlertEvent
from warroom.models.severity import Severity, most_severe, severity_from_labels

ZERO_TIME = "0001-01-01"


def _without_nul(value: Any) -> Any:
    """Drop U+0000 from every string of a payload (PostgreSQL cannot store it in text)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


class AMAlert(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        if value not in ("firing", "resolved"):
            raise ValueError("status must be 'firing' or 'resolved'")
        return value

    @field_validator("endsAt", "startsAt", mode="before")
    @classmethod
    def _zero(cls, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(ZERO_TIME):
            return None
        return value

    @field_validator("endsAt", "startsAt")
    @classmethod
    def _storable(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("give a time zone, as Alertmanager does (RFC 3339)")
        return check_instant(value)


class AlertmanagerPayload(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: str
    groupKey: str = Field(min_length=1, max_length=10000)
    status: str
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[AMAlert] = Field(min_length=1, max_length=5000)

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        # A monitoring payload is taken as it comes, minus what the database cannot hold.
        return _without_nul(data)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != "4":
            raise ValueError(f"only Alertmanager webhook payload version 4 is supported, got '{value}'")
        return value


def _fingerprint(alert: AMAlert) -> str:
    if alert.fingerprint:
        return alert.fingerprint
    blob = "\x00".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def to_events(payload: AlertmanagerPayload) -> list[AlertEvent]:
    return [
        AlertEvent(
            source="alertmanager",
            fingerprint=_fingerprint(a),
            status=a.status,
            name=a.labels.get("alertname", ""),
            summary=a.annotations.get("summary") or payload.commonAnnotations.get("summary", ""),
            labels=a.labels,
            starts_at=a.startsAt,
            ends_at=a.endsAt,
        )
        for a in payload.alerts
    ]


def group_hash(payload: AlertmanagerPayload) -> str:
    return hashlib.sha256(f"alertmanager\x00{payload.receiver}\x00{payload.groupKey}".encode()).hexdigest()


def declaration(payload: AlertmanagerPayload) -> dict[str, Any]:
    """Title, severity, components and impact start of the incident a group opens."""
    firing = [a for a in payload.alerts if a.status == "firing"] or payload.alerts
    severities = [severity_from_labels({**payload.commonLabels, **a.labels}) for a in firing]
    severity: Severity = most_severe(*severities)
    name = payload.groupLabels.get("alertname") or firing[0].labels.get("alertname") or "alert"
    summary = payload.commonAnnotations.get("summary") or firing[0].annotations.get("summary", "")
    title = summary or name
    components = list(
        dict.fromkeys(a.labels.get("component") or payload.commonLabels.get("component", "") for a in firing)
    )
    starts = [a.startsAt for a in firing if a.startsAt is not None]
    description = firing[0].annotations.get("description", "")
    return {
        "title": title[:300],
        "severity": severity,
        "summary": f"{name}: {description}".strip(": ")[:5000] if description else name,
        "components": [c for c in components if c],
        "impact_started_at": min(starts) if starts else None,
    }
