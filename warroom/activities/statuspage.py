"""Activities of the subscriber fan-out: read subscribers, deliver one message each.

``deliver_to_subscriber`` claims a unique delivery row (event key + subscriber)
*before* it talks to the provider, like ``send_notification`` does for pages:

- no row yet, or the last attempt failed transiently (``retrying``): send;
- ``sending``: an earlier attempt stopped between claiming and finishing and
  may have reached the provider; it is marked ``unconfirmed`` and **not** sent
  again (a subscriber never gets the same message twice);
- anything else was settled before: answered as a duplicate.

Links and codes are made here from the secret, so no workflow history holds one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from warroom.activities.notify import NotifierRegistry, PermanentDeliveryError, TransientDeliveryError, mask_contact
from warroom.models import notices
from warroom.models.components import Catalog
from warroom.models.ids import (
    DELIVER_TO_SUBSCRIBER_ACTIVITY,
    LIST_SUBSCRIBERS_ACTIVITY,
    RECORD_DELIVERY_OUTCOME_ACTIVITY,
)
from warroom.models.incident import NotificationKind, NotificationRequest
from warroom.models.policy import Person
from warroom.models.subscribers import (
    CONFIRM,
    UNSUBSCRIBE,
    DeliveryInput,
    DeliveryOutcome,
    DeliveryResult,
    PublicEventKind,
    SubscriberChannel,
    SubscriberPage,
    SubscriberPageInput,
    SubscriberStatus,
    delivery_key,
    sign,
    sms_code,
    wants,
)
from warroom.models.tables import SubscriberDeliveryRow, SubscriberRow

log = logging.getLogger("warroom.statuspage")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class StatusPageActivities:
    def __init__(
        self,
        engine: Engine,
        notifiers: NotifierRegistry,
        catalog: Catalog,
        secret: str,
        public_url: str,
        page_url: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._engine = engine
        self._notifiers = notifiers
        self._catalog = catalog
        self._secret = secret
        self._public_url = public_url.rstrip("/")
        self._page_url = (page_url or catalog.page.url or f"{self._public_url}/status").rstrip("/")
        self._clock = clock

    # --- who ------------------------------------------------------------------------

    @activity.defn(name=LIST_SUBSCRIBERS_ACTIVITY)
    def list_subscribers(self, inp: SubscriberPageInput) -> SubscriberPage:
        """The next page of subscribers who want this event, scanning ``limit`` rows after the cursor."""
        event_components = self._catalog.resolve_all(inp.event.components)
        with Session(self._engine) as session:
            query = (
                select(SubscriberRow.id, SubscriberRow.components, SubscriberRow.status)
                .where(SubscriberRow.id > inp.after_id)
                .order_by(SubscriberRow.id)
                .limit(inp.limit)
            )
            if inp.subscriber_ids is not None:
                query = query.where(
                    SubscriberRow.id.in_(inp.subscriber_ids),
                    SubscriberRow.status != SubscriberStatus.UNSUBSCRIBED.value,
                )
            else:
                query = query.where(SubscriberRow.status == SubscriberStatus.CONFIRMED.value)
            rows = session.execute(query).all()
        ids = [r.id for r in rows if inp.subscriber_ids is not None or wants(r.components or [], event_components)]
        next_after = rows[-1].id if len(rows) == inp.limit else None
        return SubscriberPage(ids=ids, next_after=next_after)

    # --- one message ------------------------------------------------------------------

    @activity.defn(name=DELIVER_TO_SUBSCRIBER_ACTIVITY)
    async def deliver_to_subscriber(self, inp: DeliveryInput) -> DeliveryResult:
        key = delivery_key(inp.event.key, inp.subscriber_id)
        sub = await asyncio.to_thread(self._subscriber, inp.subscriber_id)
        if sub is None or not self._still_wanted(sub, inp):
            return DeliveryResult(key=key, status="skipped")
        channel_name = SubscriberChannel(sub.channel)
        channel = self._notifiers.for_method(channel_name.value)
        claim = await asyncio.to_thread(self._claim, key, inp, sub, channel.provider)
        if claim is not None:
            return claim
        subject, text = self._render(inp, sub)
        person = Person(
            name=f"subscriber {sub.id}",
            email=sub.contact if channel_name == SubscriberChannel.EMAIL else None,
            sms=sub.contact if channel_name == SubscriberChannel.SMS else None,
        )
        req = NotificationRequest(
            key=key,
            incident_number=inp.event.incident_number or 0,
            person_id=f"subscriber-{sub.id}",
            person=person,
            channel=channel_name.value,
            kind=NotificationKind.RESOLUTION if inp.event.kind == PublicEventKind.RESOLVED else NotificationKind.STATUS,
            subject=subject,
            text=text,
        )
        try:
            provider_id = await channel.send(sub.contact, req)
        except PermanentDeliveryError as err:
            await asyncio.to_thread(self._finish, key, "failed", str(err))
            raise ApplicationError(str(err), type="PermanentDeliveryError", non_retryable=True) from err
        except TransientDeliveryError as err:
            await asyncio.to_thread(self._finish, key, "retrying", str(err))
            raise
        except Exception as err:  # noqa: BLE001 - the provider may or may not have it: never send twice
            detail = f"{type(err).__name__}: the provider's answer was lost; not sent again"
            await asyncio.to_thread(self._finish, key, "unconfirmed", detail)
            log.warning("subscriber delivery %s to %s unconfirmed (%s)", key, mask_contact(sub.contact), detail)
            return DeliveryResult(key=key, status="unconfirmed")
        await asyncio.to_thread(self._finish, key, "sent", "", provider_id)
        return DeliveryResult(key=key, status="sent")

    @activity.defn(name=RECORD_DELIVERY_OUTCOME_ACTIVITY)
    def record_delivery_outcome(self, inp: DeliveryOutcome) -> None:
        """The fan-out gave up on a delivery (permanent failure or out of time)."""
        with Session(self._engine) as session, session.begin():
            row = session.get(SubscriberDeliveryRow, inp.key)
            if row is None:
                event_key, _, sub = inp.key.rpartition("/subscriber-")
                session.add(
                    SubscriberDeliveryRow(
                        key=inp.key, event_key=event_key, subscriber_id=int(sub) if sub.isdigit() else 0,
                        channel="", provider="", status=inp.status, detail=inp.detail[:1000], attempts=0,
                        created_at=self._clock(),
                    )
                )
            elif row.status not in ("sent", "unconfirmed"):
                row.status = inp.status
                row.detail = inp.detail[:1000]

    # --- helpers ----------------------------------------------------------------------

    def _subscriber(self, subscriber_id: int) -> SubscriberRow | None:
        with Session(self._engine, expire_on_commit=False) as session:
            row = session.get(SubscriberRow, subscriber_id)
            if row is not None:
                session.expunge(row)
            return row

    @staticmethod
    def _still_wanted(sub: SubscriberRow, inp: DeliveryInput) -> bool:
        if sub.status == SubscriberStatus.UNSUBSCRIBED.value:
            return False
        if inp.event.kind == PublicEventKind.CONFIRM:
            return sub.status == SubscriberStatus.PENDING.value
        return sub.status == SubscriberStatus.CONFIRMED.value

    def _render(self, inp: DeliveryInput, sub: SubscriberRow) -> tuple[str, str]:
        channel = SubscriberChannel(sub.channel)
        page_name = self._catalog.page.name
        if inp.event.kind == PublicEventKind.CONFIRM:
            token = sign(self._secret, CONFIRM, sub.id, sub.nonce)
            url = f"{self._public_url}/status/subscriptions/confirm?token={token}"
            return notices.confirmation(channel, page_name, url, sms_code(self._secret, sub.id, sub.nonce))
        token = sign(self._secret, UNSUBSCRIBE, sub.id, sub.nonce)
        by_id = self._catalog.by_id()
        names = [by_id[c].name for c in self._catalog.resolve_all(inp.event.components)]
        return notices.incident_notice(
            inp.event,
            channel,
            page_name,
            f"{self._page_url}/incidents/{inp.event.incident_number}",
            f"{self._public_url}/status/unsubscribe?token={token}",
            names,
        )

    def _claim(self, key: str, inp: DeliveryInput, sub: SubscriberRow, provider: str) -> DeliveryResult | None:
        now = self._clock()
        with Session(self._engine) as session, session.begin():
            row = session.get(SubscriberDeliveryRow, key)
            if row is None:
                try:
                    with session.begin_nested():
                        session.add(
                            SubscriberDeliveryRow(
                                key=key,
                                event_key=inp.event.key,
                                subscriber_id=sub.id,
                                channel=sub.channel,
                                provider=provider,
                                status="sending",
                                detail="",
                                attempts=1,
                                created_at=now,
                            )
                        )
                    return None
                except IntegrityError:
                    row = session.get(SubscriberDeliveryRow, key)
                    assert row is not None
            if row.status == "retrying":
                row.status = "sending"
                row.attempts += 1
                return None
            if row.status == "sending":
                row.status = "unconfirmed"
                row.detail = "an earlier attempt stopped mid-send; not sent again"
            return DeliveryResult(key=key, status="duplicate" if row.status == "sent" else row.status)

    def _finish(self, key: str, status: str, detail: str, provider_id: str | None = None) -> None:
        with Session(self._engine) as session, session.begin():
            row = session.get(SubscriberDeliveryRow, key)
            if row is None:  # pragma: no cover - claimed just before
                return
            row.status = status
            row.detail = detail[:1000]
            if provider_id is not None:
                row.provider_id = provider_id
                row.sent_at = self._clock()

    def all(self) -> list[Callable[..., object]]:
        return [self.list_subscribers, self.deliver_to_subscriber, self.record_delivery_outcome]
