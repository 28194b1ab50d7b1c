"""Activities of the subscriber fan-out: read subscribers, deliver a batch of messages.

``deliver_to_subscribers`` claims one delivery row per subscriber (unique key:
event + subscriber) *before* it talks to the provider, like ``send_notification``
does for pages:

- no row yet, or the last attempt failed transiently (``retrying``): send;
- ``sending``: an earlier attempt stopped between claiming and recording and
  may have reached the provider; it is marked ``unconfirmed`` and **not** sent
  again (a subscriber never gets the same message twice);
- anything else was settled before: counted, not sent.

Links and codes are made here from the secret, so no workflow history holds one.
Contacts are masked in every log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from warroom.activities.notify import NotifierRegistry, PermanentDeliveryError, TransientDeliveryError, mask_contact
from warroom.models import notices
from warroom.models.components import Catalog
from warroom.models.ids import (
    DELIVER_TO_SUBSCRIBERS_ACTIVITY,
    FANOUT_WORKFLOW_NAME,
    LIST_SUBSCRIBERS_ACTIVITY,
    RECORD_DELIVERY_OUTCOME_ACTIVITY,
    START_FANOUT_ACTIVITY,
    fanout_workflow_id,
)
from warroom.models.incident import NotificationKind, NotificationRequest
from warroom.models.policy import Person
from warroom.models.subscribers import (
    CONFIRM,
    UNSUBSCRIBE,
    DeliveryBatchInput,
    DeliveryBatchResult,
    DeliveryOutcome,
    FanoutInput,
    PublicEvent,
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

    @activity.defn(name=DELIVER_TO_SUBSCRIBERS_ACTIVITY)
    async def deliver_to_subscribers(self, inp: DeliveryBatchInput) -> DeliveryBatchResult:
        """One message to each subscriber of the batch, ``send_concurrency`` at a time.

        Claims every row of the batch in one transaction, sends, and records the
        outcomes in another. Raises (so Temporal retries the batch) when some sends
        failed transiently; the retry skips everyone already sent.
        """
        ids = list(dict.fromkeys(inp.subscriber_ids))
        to_send, settled = await asyncio.to_thread(self._claim, inp.event, ids)
        gate = asyncio.Semaphore(max(1, inp.send_concurrency))

        async def one(sub: SubscriberRow) -> tuple[int, str, str, str | None]:
            async with gate:
                status, detail, provider_id = await self._send(inp.event, sub)
            activity.heartbeat()
            return sub.id, status, detail, provider_id

        # If this attempt is cancelled midway, its rows stay 'sending' and the next
        # attempt marks them 'unconfirmed' rather than risk sending twice.
        sent = await asyncio.gather(*(one(sub) for sub in to_send))
        await asyncio.to_thread(self._finish, inp.event.key, sent)
        outcomes = list(settled.values()) + [status for _id, status, _d, _p in sent]
        result = DeliveryBatchResult(
            sent=sum(1 for o in outcomes if o in ("sent", "duplicate")),
            skipped=sum(1 for o in outcomes if o == "skipped"),
            failed=sum(1 for o in outcomes if o in ("failed", "unconfirmed", "expired")),
        )
        retrying = [detail for _id, status, detail, _p in sent if status == "retrying"]
        if retrying:
            raise TransientDeliveryError(
                f"{len(retrying)} of {len(ids)} messages failed for now and will be retried ({retrying[-1]})"
            )
        return result

    async def _send(self, event: PublicEvent, sub: SubscriberRow) -> tuple[str, str, str | None]:
        """(status, detail, provider id) of one send: sent | failed | retrying | unconfirmed."""
        channel_name = SubscriberChannel(sub.channel)
        channel = self._notifiers.for_method(channel_name.value)
        subject, text, unsubscribe_url = self._render(event, sub)
        person = Person(
            name=f"subscriber {sub.id}",
            email=sub.contact if channel_name == SubscriberChannel.EMAIL else None,
            sms=sub.contact if channel_name == SubscriberChannel.SMS else None,
        )
        req = NotificationRequest(
            key=delivery_key(event.key, sub.id),
            incident_number=event.incident_number or 0,
            person_id=f"subscriber-{sub.id}",
            person=person,
            channel=channel_name.value,
            kind=NotificationKind.RESOLUTION if event.kind == PublicEventKind.RESOLVED else NotificationKind.STATUS,
            subject=subject,
            text=text,
            unsubscribe_url=unsubscribe_url,
        )
        try:
            provider_id = await channel.send(sub.contact, req)
        except PermanentDeliveryError as err:
            log.info("subscriber message %s to %s refused: %s", req.key, mask_contact(sub.contact), err)
            return "failed", str(err), None
        except TransientDeliveryError as err:
            return "retrying", str(err), None
        except Exception as err:  # noqa: BLE001 - the provider may or may not have it: never send twice
            detail = f"{type(err).__name__}: the provider's answer was lost; not sent again"
            log.warning("subscriber message %s to %s unconfirmed (%s)", req.key, mask_contact(sub.contact), detail)
            return "unconfirmed", detail, None
        return "sent", "", provider_id

    @activity.defn(name=RECORD_DELIVERY_OUTCOME_ACTIVITY)
    def record_delivery_outcome(self, inp: DeliveryOutcome) -> DeliveryBatchResult:
        """The fan-out gave up on a batch (out of time): mark what is still unsent."""
        result = DeliveryBatchResult()
        with Session(self._engine) as session, session.begin():
            for subscriber_id in dict.fromkeys(inp.subscriber_ids):
                key = delivery_key(inp.event_key, subscriber_id)
                row = session.get(SubscriberDeliveryRow, key)
                if row is None:
                    session.add(
                        SubscriberDeliveryRow(
                            key=key, event_key=inp.event_key, subscriber_id=subscriber_id, channel="", provider="",
                            status=inp.status, detail=inp.detail[:1000], attempts=0, created_at=self._clock(),
                        )
                    )
                elif row.status in ("retrying", "sending"):
                    row.status = inp.status if row.status == "retrying" else "unconfirmed"
                    row.detail = inp.detail[:1000]
                if row is not None and row.status == "sent":
                    result.sent += 1
                else:
                    result.failed += 1
        return result

    # --- helpers ----------------------------------------------------------------------

    @staticmethod
    def _still_wanted(sub: SubscriberRow, event: PublicEvent) -> bool:
        if sub.status == SubscriberStatus.UNSUBSCRIBED.value:
            return False
        if event.kind == PublicEventKind.CONFIRM:
            return sub.status == SubscriberStatus.PENDING.value
        return sub.status == SubscriberStatus.CONFIRMED.value

    def _render(self, event: PublicEvent, sub: SubscriberRow) -> tuple[str, str, str | None]:
        """(subject, text, unsubscribe link): a confirmation has no link, there is nothing to leave yet."""
        channel = SubscriberChannel(sub.channel)
        page_name = self._catalog.page.name
        if event.kind == PublicEventKind.CONFIRM:
            token = sign(self._secret, CONFIRM, sub.id, sub.nonce)
            url = f"{self._public_url}/status/subscriptions/confirm?token={token}"
            return *notices.confirmation(channel, page_name, url, sms_code(self._secret, sub.id, sub.nonce)), None
        token = sign(self._secret, UNSUBSCRIBE, sub.id, sub.nonce)
        # The same link as in the text: a GET shows a button, a POST (the button, or a
        # mail client's one-click request) unsubscribes.
        unsubscribe_url = f"{self._public_url}/status/unsubscribe?token={token}"
        by_id = self._catalog.by_id()
        names = [by_id[c].name for c in self._catalog.resolve_all(event.components)]
        subject, text = notices.incident_notice(
            event,
            channel,
            page_name,
            f"{self._page_url}/incidents/{event.incident_number}",
            unsubscribe_url,
            names,
        )
        return subject, text, unsubscribe_url

    def _claim(self, event: PublicEvent, ids: list[int]) -> tuple[list[SubscriberRow], dict[int, str]]:
        """Claim the batch's delivery rows in one transaction.

        Returns the subscribers to send to now, and the status of every other one
        (skipped, or settled by an earlier attempt).
        """
        now = self._clock()
        keys = {sid: delivery_key(event.key, sid) for sid in ids}
        to_send: list[SubscriberRow] = []
        settled: dict[int, str] = {}
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            subs = {s.id: s for s in session.scalars(select(SubscriberRow).where(SubscriberRow.id.in_(ids)))}
            rows = {
                r.subscriber_id: r
                for r in session.scalars(
                    select(SubscriberDeliveryRow).where(SubscriberDeliveryRow.key.in_(list(keys.values())))
                )
            }
            for sid in ids:
                sub, row = subs.get(sid), rows.get(sid)
                if row is None:
                    if sub is None or not self._still_wanted(sub, event):
                        settled[sid] = "skipped"
                        continue
                    session.add(
                        SubscriberDeliveryRow(
                            key=keys[sid], event_key=event.key, subscriber_id=sid, channel=sub.channel,
                            provider=self._notifiers.for_method(sub.channel).provider, status="sending",
                            detail="", attempts=1, created_at=now,
                        )
                    )
                    to_send.append(sub)
                elif row.status == "retrying":
                    if sub is None or not self._still_wanted(sub, event):
                        row.status, row.detail = "skipped", "unsubscribed before it could be delivered"
                        settled[sid] = "skipped"
                        continue
                    row.status = "sending"
                    row.attempts += 1
                    to_send.append(sub)
                elif row.status == "sending":
                    # An earlier attempt stopped between claiming and recording: it may
                    # have reached the provider. Never risk a second message.
                    row.status = "unconfirmed"
                    row.detail = "an earlier attempt stopped mid-send; not sent again"
                    settled[sid] = "unconfirmed"
                else:
                    settled[sid] = "duplicate" if row.status == "sent" else row.status
            session.flush()
            for sub in to_send:
                session.expunge(sub)
        return to_send, settled

    def _finish(self, event_key: str, outcomes: list[tuple[int, str, str, str | None]]) -> None:
        if not outcomes:
            return
        now = self._clock()
        by_key = {delivery_key(event_key, sid): (status, detail, pid) for sid, status, detail, pid in outcomes}
        with Session(self._engine) as session, session.begin():
            for row in session.scalars(select(SubscriberDeliveryRow).where(SubscriberDeliveryRow.key.in_(list(by_key)))):
                status, detail, provider_id = by_key[row.key]
                row.status, row.detail = status, detail[:1000]
                if provider_id is not None:
                    row.provider_id, row.sent_at = provider_id, now

    @activity.defn(name=START_FANOUT_ACTIVITY)
    async def start_subscriber_fanout(self, event: PublicEvent) -> None:
        """Start the fan-out of one public event, once ever (its id is the event key)."""
        try:
            await activity.client().start_workflow(
                FANOUT_WORKFLOW_NAME,
                FanoutInput(event=event),
                id=fanout_workflow_id(event.key),
                task_queue=activity.info().task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass

    def all(self) -> list[Callable[..., object]]:
        return [
            self.list_subscribers,
            self.deliver_to_subscribers,
            self.record_delivery_outcome,
            self.start_subscriber_fanout,
        ]
