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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from warroom.api.schemas import check_instant
from warroom.models import detection
from warroom.models.incident import AlertEvent
from warroom.models.severity import Severity, most_severe, parse_severity, severity_from_labels

ZERO_TIME = "0001-01-01"
GRAFANA_LINKS = ("dashboardURL", "panelURL", "silenceURL")


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


def _links(alert: AMAlert, annotations: dict[str, str]) -> list[str]:
    extra = alert.model_extra or {}
    found = [alert.generatorURL, annotations.get("runbook_url"), *(extra.get(k) for k in GRAFANA_LINKS)]
    return [u for u in dict.fromkeys(found) if isinstance(u, str) and u.startswith(("http://", "https://"))][:10]


def _events(source: str, payload: "AlertmanagerPayload | GrafanaPayload") -> list[AlertEvent]:
    events = []
    for a in payload.alerts:
        labels = {**payload.commonLabels, **a.labels}
        annotations = {**payload.commonAnnotations, **a.annotations}
        events.append(AlertEvent(
            source=source,
            fingerprint=_fingerprint(a),
            status=a.status,
            name=a.labels.get("alertname", ""),
            summary=annotations.get("summary", ""),
            description=annotations.get("description", ""),
            labels=a.labels,
            starts_at=a.startsAt,
            ends_at=a.endsAt,
            severity=severity_from_labels(labels),
            component=labels.get("component") or None,
            links=_links(a, annotations),
        ))
    return events


def to_events(payload: AlertmanagerPayload) -> list[AlertEvent]:
    return _events("alertmanager", payload)


def group_hash(payload: AlertmanagerPayload) -> str:
    return detection.group_hash("alertmanager", payload.groupKey, payload.receiver)


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


# --- Grafana alerting (unified alerting's webhook contact point) ------------------------------------


class GrafanaPayload(BaseModel):
    """Grafana's webhook payload: Alertmanager's shape, version "1", plus title, state and message."""

    model_config = ConfigDict(extra="allow")
    version: str = "1"
    groupKey: str = Field(min_length=1, max_length=10000)
    status: str
    receiver: str = ""
    orgId: int | None = None
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    title: str = Field(default="", max_length=1000)
    message: str = Field(default="", max_length=20000)
    alerts: list[AMAlert] = Field(min_length=1, max_length=5000)

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        return _without_nul(data)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != "1":
            raise ValueError(f"only Grafana webhook payload version 1 is supported, got '{value}'")
        return value


def grafana_events(payload: GrafanaPayload) -> list[AlertEvent]:
    return _events("grafana", payload)


# --- the generic JSON alert ------------------------------------------------------------------------


class GenericAlert(BaseModel):
    """One alert from anything that can POST JSON. Unknown keys are refused, so a typo
    ("sevrity") is a 422 naming it rather than an alert quietly missing its severity."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    title: str = Field(min_length=1, max_length=300)
    status: Literal["firing", "resolved"] = "firing"
    severity: str | None = Field(default=None, max_length=20,
                                 description="SEV-1..SEV-4 or critical, major, minor, warning, info, low")
    component: str | None = Field(default=None, min_length=1, max_length=100)
    dedup_key: str | None = Field(default=None, min_length=1, max_length=300,
                                  description="alerts with the same key join one open incident")
    description: str = Field(default="", max_length=5000)
    links: list[str] = Field(default_factory=list, max_length=10)
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)
    starts_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        return _without_nul(data)

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.strip().lower() in SEVERITY_WORDS:
            return value.strip().lower()
        parse_severity(value)  # raises with the accepted spellings
        return value

    @field_validator("links")
    @classmethod
    def _links(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")) or len(url) > 2000:
                raise ValueError("each link must be an http:// or https:// URL of at most 2000 characters")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if any(len(k) > 100 or len(v) > 1000 for k, v in value.items()):
            raise ValueError("label names are at most 100 characters, values at most 1000")
        return value

    @field_validator("starts_at")
    @classmethod
    def _storable(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("give a time zone (RFC 3339), e.g. 2026-11-30T14:03:00Z")
        return check_instant(value)

    def severity_level(self) -> Severity | None:
        if self.severity is None:
            return None
        if self.severity in SEVERITY_WORDS:
            return severity_from_labels({"severity": self.severity})
        return parse_severity(self.severity)

    def key(self) -> str:
        """The dedup key, or one made of the title and component (the same alert repeated)."""
        return self.dedup_key or detection.fingerprint(self.title, self.component or "")

    def event(self) -> AlertEvent:
        return AlertEvent(
            source="generic",
            fingerprint=detection.fingerprint("generic", self.key()),
            status=self.status,
            name=self.title,
            summary=self.title,
            description=self.description,
            labels=self.labels,
            starts_at=self.starts_at,
            severity=self.severity_level(),
            component=self.component,
            dedup_key=self.key(),
            links=self.links,
        )


SEVERITY_WORDS = ("critical", "major", "high", "error", "minor", "warning", "info", "low")
