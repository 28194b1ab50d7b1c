"""Activities of the incident workflow: write the read model, send notifications.

Both are idempotent. ``persist_incident`` writes only newer versions and
ignores rows it already wrote. ``send_notification`` claims a unique row per
idempotency key *before* talking to the provider, so a retried activity never
sends twice: if a previous attempt died after claiming the row, the outcome is
unknown and reported as ``unconfirmed`` instead of sending again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from warroom.activities.notify import (
    NotifierRegistry,
    PermanentDeliveryError,
    TransientDeliveryError,
    contact_for,
)
from warroom.models.ids import PERSIST_INCIDENT_ACTIVITY, SEND_NOTIFICATION_ACTIVITY
from warroom.models.incident import NotificationRequest, NotificationResult, PersistInput
from warroom.models.tables import (
    AlertGroup,
    NotificationRow,
    StatusUpdateRow,
    TimelineRow,
    insert_ignoring_duplicates,
    replace_component_impacts,
    upsert_newer,
)

log = logging.getLogger("warroom.activities")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class IncidentActivities:
    def __init__(self, engine: Engine, notifiers: NotifierRegistry, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._notifiers = notifiers
        self._clock = clock

    @activity.defn(name=PERSIST_INCIDENT_ACTIVITY)
    def persist_incident(self, inp: PersistInput) -> None:
        s = inp.state
        values = {
            "number": s.number,
            "title": s.title,
            "severity": s.severity.value,
            "status": s.status.value,
            "source": s.source,
            "components": list(s.components),
            "declared_at": s.declared_at,
            "detected_at": s.detected_at,
            "impact_started_at": s.impact_started_at,
            "acknowledged_at": s.acknowledged_at,
            "acknowledged_by": s.acknowledged_by,
            "resolved_at": s.resolved_at,
            "postmortem_deadline": s.postmortem.deadline,
            "postmortem_submitted_at": s.postmortem.submitted_at,
            "version": s.version,
            "state": s.model_dump(mode="json"),
        }
        with Session(self._engine) as session, session.begin():
            upsert_newer(session, values)
            insert_ignoring_duplicates(
                session,
                TimelineRow,
                [
                    {"incident_number": s.number, "seq": e.seq, "at": e.at, "kind": e.kind, "text": e.text, "actor": e.actor}
                    for e in inp.timeline
                ],
            )
            insert_ignoring_duplicates(
                session,
                StatusUpdateRow,
                [
                    {
                        "incident_number": s.number,
                        "seq": u.seq,
                        "at": u.at,
                        "kind": u.kind.value,
                        "author": u.author,
                        "message": u.message,
                    }
                    for u in inp.status_updates
                ],
            )
            if inp.release_group:
                session.execute(delete(AlertGroup).where(AlertGroup.incident_number == s.number))
            replace_component_impacts(
                session,
                s.number,
                s.version,
                [
                    {"component": i.component, "state": i.state.value, "started_at": i.since,
                     "ended_at": i.until, "set_by": i.set_by}
                    for i in s.component_impacts
                ],
            )

    @activity.defn(name=SEND_NOTIFICATION_ACTIVITY)
    async def send_notification(self, req: NotificationRequest) -> NotificationResult:
        channel = self._notifiers.for_method(req.channel)
        contact = contact_for(req)
        claim = self._claim(req, channel.provider)
        if claim is not None:
            return claim
        if contact is None:
            self._finish(req.key, "failed", f"{req.person_id} has no {req.channel} contact")
            raise ApplicationError(
                f"{req.person_id} has no {req.channel} contact", type="PermanentDeliveryError", non_retryable=True
            )
        try:
            provider_id = await channel.send(contact, req)
        except PermanentDeliveryError as err:
            self._finish(req.key, "failed", str(err))
            raise ApplicationError(str(err), type="PermanentDeliveryError", non_retryable=True) from err
        except TransientDeliveryError as err:
            self._finish(req.key, "retrying", str(err))
            raise
        self._finish(req.key, "sent", "", provider_id)
        return NotificationResult(key=req.key, status="sent", provider=channel.provider)

    def _claim(self, req: NotificationRequest, provider: str) -> NotificationResult | None:
        """Claim the key; return a result instead when this key was handled before."""
        now = self._clock()
        with Session(self._engine) as session, session.begin():
            row = session.get(NotificationRow, req.key)
            if row is None:
                try:
                    with session.begin_nested():
                        session.add(
                            NotificationRow(
                                key=req.key,
                                incident_number=req.incident_number,
                                person_id=req.person_id,
                                channel=req.channel,
                                provider=provider,
                                kind=req.kind.value,
                                subject=req.subject,
                                text=req.text,
                                status="sending",
                                detail="",
                                created_at=now,
                            )
                        )
                    return None
                except IntegrityError:
                    row = session.get(NotificationRow, req.key)
                    assert row is not None
            if row.status == "retrying":
                row.status = "sending"
                return None
            if row.status == "sending":
                # An earlier attempt died between claiming and finishing: it may
                # have reached the provider. Never risk a second delivery.
                row.status = "unconfirmed"
                row.detail = "an earlier attempt stopped mid-send; not sent again"
            return NotificationResult(key=req.key, status="duplicate" if row.status == "sent" else row.status,
                                      provider=row.provider, detail=row.detail)

    def _finish(self, key: str, status: str, detail: str, provider_id: str | None = None) -> None:
        with Session(self._engine) as session, session.begin():
            row = session.get(NotificationRow, key)
            if row is None:  # pragma: no cover - claimed just before
                return
            row.status = status
            row.detail = detail[:1000]
            if provider_id is not None:
                row.provider_id = provider_id
                row.sent_at = self._clock()

    def all(self) -> list[Callable[..., object]]:
        return [self.persist_incident, self.send_notification]
