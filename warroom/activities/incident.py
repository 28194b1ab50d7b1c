"""Activities of the incident workflow: write the read model, send notifications.

Both are idempotent. ``persist_incident`` writes only newer versions and
ignores rows it already wrote. ``send_notification`` claims a unique row per
idempotency key *before* talking to the provider, so a retried activity never
sends twice: if a previous attempt died after claiming the row, the outcome is
unknown and reported as ``unconfirmed`` instead of sending again.

Pages (not reminders) also obey two more rules. Just before one goes out, the
incident is asked whether it still wants it (a query to its workflow): after an
ack the answer is no, so a page scheduled a moment before the ack, waiting in a
retry back-off or held by the cap, never goes out. And the per-contact cap: a
phone number or address gets at most one page per method per ``page_cap``;
pages that fall due meanwhile wait (heartbeating, so an ack's cancellation
reaches them) and then leave together as one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import Client, WorkflowQueryRejectedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from warroom.activities.notify import (
    AlwaysWanted,
    Channel,
    NotifierRegistry,
    PageGuard,
    PermanentDeliveryError,
    TransientDeliveryError,
    contact_for,
)
from warroom.models import messages
from warroom.models.config_store import Current, CurrentConfig
from warroom.models.ids import (
    PAGE_WANTED_QUERY,
    PERSIST_INCIDENT_ACTIVITY,
    SEND_NOTIFICATION_ACTIVITY,
    incident_workflow_id,
)
from warroom.models.incident import NotificationRequest, NotificationResult, PersistInput
from warroom.models.paging import PAGE_KINDS, contact_ref
from warroom.models.policy import PolicyError
from warroom.models.routing import still_targeted
from warroom.models.tables import (
    AlertGroup,
    ContactSlot,
    NotificationRow,
    StatusUpdateRow,
    TimelineRow,
    insert_ignoring_duplicates,
    replace_component_impacts,
    upsert_newer,
)

from warroom.activities.action_items import ActionItemActivities

log = logging.getLogger("warroom.activities")

Clock = Callable[[], datetime]
T = TypeVar("T")

OTHER_ATTEMPT_WAIT = timedelta(seconds=15)
"""How long an attempt that lost the race to send a page waits for the winner's outcome
(well inside the send activity's 30 s per attempt)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class IncidentActivities:
    def __init__(
        self,
        engine: Engine,
        notifiers: NotifierRegistry,
        clock: Clock = utc_now,
        guard: PageGuard | None = None,
        poll_seconds: float = 0.2,
        config: CurrentConfig | None = None,
    ) -> None:
        self._config = config
        self._engine = engine
        self._notifiers = notifiers
        self._clock = clock
        self._guard: PageGuard = guard or AlwaysWanted()
        self._poll = poll_seconds

    @staticmethod
    async def _io(fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking read-model call off the event loop: a SQLite writer waiting on its
        lock (or a slow PostgreSQL) must not stall every other activity and the pollers."""
        return await asyncio.to_thread(fn, *args)

    @property
    def notifiers(self) -> NotifierRegistry:
        return self._notifiers

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
                        "phase": u.phase.value if u.phase is not None else None,
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
        req, gone = await self._io(self._as_configured, req)
        channel = self._notifiers.for_method(req.channel)
        contact = contact_for(req)
        workflow_id = _workflow_id(req)
        is_page = req.page if req.page is not None else req.kind in PAGE_KINDS
        ref = contact_ref(req.channel, contact) if contact and is_page and req.page_cap_seconds > 0 else None
        claim = await self._io(self._claim, req, channel.provider, workflow_id, ref, is_page)
        if claim is not None:
            return claim
        if gone is not None:
            # "dropped", not "withdrawn": for a page this counts as a failed method, so the
            # workflow moves on (to the next level) instead of waiting for an ack that cannot come.
            await self._io(self._finish, req.key, "dropped", gone)
            return NotificationResult(key=req.key, status="dropped", provider=channel.provider, detail=gone)
        if contact is None:
            await self._io(self._finish, req.key, "failed", f"{req.person_id} has no {req.channel} contact")
            raise ApplicationError(
                f"{req.person_id} has no {req.channel} contact", type="PermanentDeliveryError", non_retryable=True
            )
        async with _heartbeating():
            if ref is not None:
                return await self._send_capped(req, channel, contact, ref, workflow_id)
            if is_page:
                if not await self._guard.wanted(workflow_id, req.key):
                    return await self._io(self._withdraw, req, channel.provider)
                if not await self._io(self._start_sending, req.key):
                    # Another attempt of this activity got here first (one of the two outlived
                    # its timeout while the incident was slow to answer): never send too.
                    return await self._other_attempts_outcome(req.key, channel.provider)
            try:
                provider_id = await _finish_even_if_cancelled(channel.send(contact, req))
            except PermanentDeliveryError as err:
                await self._io(self._finish, req.key, "failed", str(err))
                raise ApplicationError(str(err), type="PermanentDeliveryError", non_retryable=True) from err
            except TransientDeliveryError as err:
                await self._io(self._finish, req.key, "retrying", str(err))
                raise
            await self._io(self._finish, req.key, "sent", "", provider_id)
            return NotificationResult(key=req.key, status="sent", provider=channel.provider)

    def _as_configured(self, req: NotificationRequest) -> tuple[NotificationRequest, str | None]:
        """The request with the person's contact details as the configuration in force has
        them, and why it must not go out at all (the person left the configuration, or was
        taken off the schedule or team that brought them into this incident)."""
        if self._config is None:
            return req, None
        current = _current_or_none(self._config)
        if current is None:
            return req, None
        gone = still_targeted(current.policy, req.via, req.person_id)
        if gone is not None:
            return req, gone
        return req.model_copy(update={"person": current.policy.people[req.person_id]}), None

    # --- the per-contact cap: hold, then send everything due in one message -----------------

    async def _send_capped(
        self, req: NotificationRequest, channel: Channel, contact: str, ref: str, workflow_id: str
    ) -> NotificationResult:
        """Send now if this phone/address had no page within the cap; otherwise wait for
        the cap to pass (heartbeating, so an ack can cancel the wait) and then send one
        message for every page that queued up for it meanwhile, each still wanted."""
        cap = timedelta(seconds=req.page_cap_seconds)
        held_since = self._clock()
        noted: datetime | None = None
        waited = False
        while True:
            turn = await self._io(self._try_slot, req.key, ref, cap)
            if turn.done is not None:
                return await self._io(self._result_from_row, turn.done)
            if turn.rows is not None:
                break
            assert turn.wait_until is not None
            if turn.wait_until != noted and turn.wait_until - self._clock() > timedelta(seconds=self._poll):
                noted = turn.wait_until
                await self._io(self._note_held, req.key, turn.wait_until, cap)
            pause = (turn.wait_until - self._clock()).total_seconds()
            waited = True
            try:
                await asyncio.sleep(min(max(pause, 0.01), self._poll))
            except asyncio.CancelledError:
                self._finish_if(req.key, ("queued",), "withdrawn", "cancelled while held by the per-contact cap")
                raise
        rows, previous, taken_at = turn.rows, turn.previous, turn.taken_at
        assert taken_at is not None
        wanted: list[_Queued] = []
        for row in rows:
            wid = workflow_id if row.key == req.key else row.workflow_id
            try:
                ok = await self._guard.wanted(wid, row.key)
            except TransientDeliveryError:
                await self._io(self._release, ref, rows, taken_at, previous, req.key,
                               "could not ask the incident; will retry")
                raise
            if ok:
                wanted.append(row)
            else:
                await self._io(self._finish, row.key, "withdrawn",
                               "the incident no longer wants this page (acknowledged or resolved)")
        if not wanted:
            await self._io(self._restore_slot, ref, taken_at, previous)
            return self._withdrawn_result(req, channel.provider)
        # Held only if it had to wait for the slot (not for the database on the first try).
        held = max(0.0, (taken_at - held_since).total_seconds()) if waited else 0.0
        numbers = sorted({r.incident_number for r in wanted})
        outgoing = req
        if len(wanted) > 1 or wanted[0].key != req.key:
            subject, text = messages.bundle([(r.incident_number, r.subject) for r in wanted])
            outgoing = req.model_copy(update={"subject": subject, "text": text})
        try:
            provider_id = await _finish_even_if_cancelled(channel.send(contact, outgoing))
        except PermanentDeliveryError as err:
            await self._io(self._finish_all, [r.key for r in wanted], "failed", str(err))
            await self._io(self._restore_slot, ref, taken_at, previous)
            raise ApplicationError(str(err), type="PermanentDeliveryError", non_retryable=True) from err
        except TransientDeliveryError as err:
            await self._io(self._release, ref, wanted, taken_at, previous, req.key, str(err))
            raise
        detail = _held_detail(held, cap, numbers)
        # In one transaction: a bundled incident's own activity reads its row and, by the
        # provider id, the others it went out with; it must never see only some of them.
        await self._io(self._finish_all, [r.key for r in wanted], "sent", detail, provider_id)
        mine = next((r for r in wanted if r.key == req.key), None)
        if mine is None:  # our own page was withdrawn; the others went out
            return self._withdrawn_result(req, channel.provider)
        others = [n for n in numbers if n != req.incident_number]
        return NotificationResult(
            key=req.key, status="sent", provider=channel.provider, detail=detail,
            held_seconds=round(held, 3), bundled_with=others,
        )

    def _try_slot(self, key: str, ref: str, cap: timedelta) -> "_Turn":
        """One transaction: take the contact's slot if the cap allows, and with it every
        page queued for that contact; or say how long to wait."""
        now = self._clock()
        retry_soon = _Turn(wait_until=now + timedelta(seconds=self._poll))
        try:
            with Session(self._engine) as session, session.begin():
                mine = session.get(NotificationRow, key)
                assert mine is not None
                if mine.status == "bundling":
                    return retry_soon
                if mine.status != "queued":
                    session.expunge(mine)
                    return _Turn(done=mine)
                slot = session.get(ContactSlot, ref)
                if slot is not None and slot.last_sent_at + cap > now:
                    return _Turn(wait_until=slot.last_sent_at + cap)
                previous = slot.last_sent_at if slot is not None else None
                if slot is None:
                    try:
                        with session.begin_nested():
                            session.add(ContactSlot(contact_ref=ref, last_sent_at=now))
                    except IntegrityError:
                        return retry_soon
                else:
                    taken = session.execute(
                        update(ContactSlot)
                        .where(ContactSlot.contact_ref == ref, ContactSlot.last_sent_at == previous)
                        .values(last_sent_at=now)
                    )
                    if not taken.rowcount:  # type: ignore[attr-defined]
                        return retry_soon
                queued = list(
                    session.scalars(
                        select(NotificationRow)
                        .where(NotificationRow.contact_ref == ref, NotificationRow.status == "queued")
                        .order_by(NotificationRow.created_at, NotificationRow.key)
                    )
                )
                rows = []
                for row in queued:
                    row.status = "sending" if row.key == key else "bundling"
                    rows.append(
                        _Queued(
                            key=row.key,
                            incident_number=row.incident_number,
                            subject=row.subject,
                            workflow_id=row.workflow_id or incident_workflow_id(row.incident_number),
                        )
                    )
                return _Turn(rows=rows, previous=previous, taken_at=now)
        except OperationalError:
            # SQLite refuses a write that raced another writer: look again shortly.
            return retry_soon

    def _release(
        self, ref: str, rows: list["_Queued"], taken_at: datetime, previous: datetime | None, mine: str, why: str
    ) -> None:
        """A send that did not happen gives back the slot and the pages it carried."""
        self._restore_slot(ref, taken_at, previous)
        with Session(self._engine) as session, session.begin():
            for row in rows:
                stored = session.get(NotificationRow, row.key)
                if stored is None or stored.status not in ("sending", "bundling"):
                    continue
                stored.status = "retrying" if row.key == mine else "queued"
                stored.detail = why[:1000] if row.key == mine else stored.detail

    def _restore_slot(self, ref: str, taken_at: datetime, previous: datetime | None) -> None:
        with Session(self._engine) as session, session.begin():
            if previous is None:
                session.execute(
                    delete(ContactSlot).where(ContactSlot.contact_ref == ref, ContactSlot.last_sent_at == taken_at)
                )
            else:
                session.execute(
                    update(ContactSlot)
                    .where(ContactSlot.contact_ref == ref, ContactSlot.last_sent_at == taken_at)
                    .values(last_sent_at=previous)
                )

    def _note_held(self, key: str, until: datetime, cap: timedelta) -> None:
        every = int(cap.total_seconds())
        self._finish_if(
            key, ("queued",), "queued",
            f"held until {until.strftime('%H:%M:%S')} UTC by the per-contact cap (one page per {every} s)",
        )

    def _result_from_row(self, row: NotificationRow) -> NotificationResult:
        """What a page that another activity sent (bundled), withdrew or failed came to."""
        status = "sent" if row.status in ("sent", "delivered") else row.status
        if status == "sent":
            held = (row.sent_at - row.created_at).total_seconds() if row.sent_at else 0.0
            with Session(self._engine) as session:
                others = sorted(
                    set(
                        session.scalars(
                            select(NotificationRow.incident_number).where(
                                NotificationRow.provider_id == row.provider_id,
                                NotificationRow.incident_number != row.incident_number,
                            )
                        )
                    )
                ) if row.provider_id else []
            return NotificationResult(
                key=row.key, status="sent", provider=row.provider, detail=row.detail,
                held_seconds=round(max(held, 0.0), 3), bundled_with=others,
            )
        if status == "failed":
            raise ApplicationError(row.detail or "delivery failed", type="PermanentDeliveryError", non_retryable=True)
        return NotificationResult(key=row.key, status=status, provider=row.provider, detail=row.detail)

    # --- bookkeeping ---------------------------------------------------------------------

    def _withdraw(self, req: NotificationRequest, provider: str) -> NotificationResult:
        self._finish_if(req.key, ("queued",), "withdrawn",
                        "the incident no longer wants this page (acknowledged or resolved)")
        return self._withdrawn_result(req, provider)

    def _start_sending(self, key: str) -> bool:
        """queued -> sending, for exactly one attempt: the one that may talk to the provider.

        A page is claimed as queued and becomes sending only now, after the incident said
        it still wants it. An attempt that stops before this point (its timeout passed
        while the incident was slow to answer) sent nothing, so the retry sends it; one
        that stops after it may have reached the provider, so the retry never does."""
        with Session(self._engine) as session, session.begin():
            changed = session.execute(
                update(NotificationRow)
                .where(NotificationRow.key == key, NotificationRow.status == "queued")
                .values(status="sending")
            )
            return bool(changed.rowcount == 1)

    async def _other_attempts_outcome(self, key: str, provider: str) -> NotificationResult:
        """What the attempt that is sending this page came to: waited for (a send takes
        a moment), or "unconfirmed" when it does not finish within OTHER_ATTEMPT_WAIT."""
        give_up = self._clock() + OTHER_ATTEMPT_WAIT
        while True:
            row = await self._io(self._row, key)
            if row is None or row.status not in ("sending", "queued"):
                break
            if self._clock() >= give_up:
                return NotificationResult(key=key, status="unconfirmed", provider=provider,
                                          detail="another attempt was still sending it")
            await asyncio.sleep(self._poll)
        if row is None:  # pragma: no cover - claimed before
            return NotificationResult(key=key, status="unconfirmed", provider=provider)
        if row.status == "failed":
            raise ApplicationError(row.detail or "delivery failed", type="PermanentDeliveryError", non_retryable=True)
        if row.status == "retrying":  # the other attempt met a passing failure: try again
            raise ApplicationError(row.detail or "the provider failed for a moment", type="TransientDeliveryError")
        status = "duplicate" if row.status in ("sent", "delivered") else row.status
        return NotificationResult(key=key, status=status, provider=row.provider, detail=row.detail)

    def _row(self, key: str) -> NotificationRow | None:
        with Session(self._engine) as session:
            row = session.get(NotificationRow, key)
            if row is not None:
                session.expunge(row)
            return row

    @staticmethod
    def _withdrawn_result(req: NotificationRequest, provider: str) -> NotificationResult:
        return NotificationResult(
            key=req.key, status="withdrawn", provider=provider,
            detail="not sent: the incident no longer wants this page",
        )

    def _claim(
        self, req: NotificationRequest, provider: str, workflow_id: str, ref: str | None, is_page: bool = False
    ) -> NotificationResult | None:
        """Claim the key; return a result instead when this key was handled before.

        A page is claimed as queued (the cap may hold it, and the incident is asked whether
        it still wants it before anything is sent); anything else as sending."""
        now = self._clock()
        fresh = "queued" if ref is not None or is_page else "sending"
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
                                status=fresh,
                                detail="",
                                created_at=now,
                                workflow_id=workflow_id,
                                step=req.step,
                                contact_ref=ref,
                            )
                        )
                    return None
                except IntegrityError:
                    row = session.get(NotificationRow, req.key)
                    assert row is not None
            if row.status == "retrying":
                row.status = fresh
                return None
            if row.status in ("queued", "bundling"):
                return None  # an earlier attempt stopped while the cap held it: nothing went out
            if row.status == "sending":
                # An earlier attempt died between claiming and finishing: it may
                # have reached the provider. Never risk a second delivery.
                row.status = "unconfirmed"
                row.detail = "an earlier attempt stopped mid-send; not sent again"
            if row.status == "failed":
                raise ApplicationError(row.detail or "delivery failed", type="PermanentDeliveryError",
                                       non_retryable=True)
            return NotificationResult(key=req.key, status="duplicate" if row.status in ("sent", "delivered")
                                      else row.status, provider=row.provider, detail=row.detail)

    def _finish(self, key: str, status: str, detail: str, provider_id: str | None = None) -> None:
        self._finish_all([key], status, detail, provider_id)

    def _finish_all(self, keys: list[str], status: str, detail: str, provider_id: str | None = None) -> None:
        with Session(self._engine) as session, session.begin():
            for key in keys:
                row = session.get(NotificationRow, key)
                if row is None:  # pragma: no cover - claimed just before
                    continue
                row.status = status
                row.detail = detail[:1000]
                if provider_id is not None:
                    row.provider_id = provider_id or None
                    row.sent_at = self._clock()

    def _finish_if(self, key: str, current: tuple[str, ...], status: str, detail: str) -> None:
        with Session(self._engine) as session, session.begin():
            row = session.get(NotificationRow, key)
            if row is not None and row.status in current:
                row.status = status
                row.detail = detail[:1000]

    def all(self) -> list[Callable[..., object]]:
        # The action-item tracker's writes share this engine (and every worker that runs incidents).
        return [self.persist_incident, self.send_notification, *ActionItemActivities(self._engine).all()]


@dataclass(frozen=True)
class _Queued:
    key: str
    incident_number: int
    subject: str
    workflow_id: str


@dataclass
class _Turn:
    """What ``_try_slot`` decided: ``done`` (someone else settled our page), ``rows``
    (our turn: send these), or ``wait_until``."""

    done: NotificationRow | None = None
    rows: list[_Queued] | None = None
    previous: datetime | None = None
    taken_at: datetime | None = None
    wait_until: datetime | None = None


def _current_or_none(config: CurrentConfig) -> Current | None:
    """The configuration in force; a read that fails leaves the request as the workflow sent it."""
    try:
        return config.get()
    except (OperationalError, PolicyError) as err:
        log.warning("could not read the on-call configuration (%s); sending as the incident says", err)
        return None


def _workflow_id(req: NotificationRequest) -> str:
    if activity.in_activity():
        return activity.info().workflow_id
    return incident_workflow_id(req.incident_number)


def _held_detail(held: float, cap: timedelta, numbers: list[int]) -> str:
    parts = []
    if held >= 0.5:
        parts.append(f"held {held:.0f} s by the per-contact cap (one page per {int(cap.total_seconds())} s)")
    if len(numbers) > 1:
        parts.append("sent as one message for " + ", ".join(f"#{n}" for n in numbers))
    return "; ".join(parts)


async def _finish_even_if_cancelled(coro: Awaitable[T]) -> T:
    """Let a provider call that has started run to its end even if the activity is
    cancelled meanwhile, so the row records what happened; then pass the cancel on."""
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


@contextlib.asynccontextmanager
async def _heartbeating(every: float = 1.0) -> AsyncIterator[None]:
    """Heartbeat in the background while a page is held or sent, so an ack's
    cancellation reaches it and a dead worker is noticed."""
    if not activity.in_activity():
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.ensure_future(beat())
    try:
        yield
    finally:
        task.cancel()


class WorkflowPageGuard:
    """Asks the incident's workflow (a query, answered from its current state)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def wanted(self, workflow_id: str, key: str) -> bool:
        try:
            handle = self._client.get_workflow_handle(workflow_id)
            return bool(await handle.query(PAGE_WANTED_QUERY, key, result_type=bool))
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise TransientDeliveryError(f"cannot ask incident {workflow_id} whether to page: {err.message}") from None
        except WorkflowQueryRejectedError:
            return False
