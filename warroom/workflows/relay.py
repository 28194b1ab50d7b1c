"""Mirror an incident into its Slack channel and to outgoing webhooks, never in its way.

One background loop per target, started by the incident workflow: whenever the
timeline grows or the pinned summary would change, it calls the target's
activity with everything not yet delivered. The activity is retried a few
times; when it still fails the incident carries on, the timeline says so once,
and the loop tries again at the next change or after the policy's
``chat_retry_every``, whichever comes first. Activities deliver idempotently
(rows keyed by incident and timeline entry), so a retry never posts twice what
was recorded as posted.

Deterministic: no I/O, clock or provider SDK here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from warroom.models.chat import SLACK, ChatPerson, RelayInput, RelayResult, RelaySnapshot
    from warroom.models.ids import RELAY_SLACK_ACTIVITY, RELAY_WEBHOOKS_ACTIVITY
    from warroom.models.incident import Deadline, IncidentState, IncidentStatus, RelayTarget
    from warroom.models.policy import Person, Policy

CHAT_PATCH = "slack-channel"
"""Incidents declared with chat targets mirror themselves; histories before it have none."""
PHASE_PATCH = "relay-public-phase"
"""The pinned message shows the public phase; incidents mirrored before it never sent one,
and showing it would post an update their histories do not have."""
ACTIVITIES = {SLACK: RELAY_SLACK_ACTIVITY, "webhooks": RELAY_WEBHOOKS_ACTIVITY}
LABELS = {SLACK: "Slack", "webhooks": "Outgoing webhooks"}
RELAY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=4),
    maximum_attempts=3,
    non_retryable_error_types=["ChatConfigError"],
)
"""Bounded: after a few seconds the incident hears that the target is failing and goes on."""
RELAY_TIMEOUT = timedelta(seconds=60)
MAX_ENTRIES = 100
"""Timeline entries per activity call; a long backlog goes out in several calls."""
MIN_RETRY = timedelta(seconds=1)


def snapshot(s: IncidentState, deadlines: list[Deadline], person: Callable[[str], Person | None],
             phase: bool = False) -> RelaySnapshot:
    ids = [p.person for p in s.pages] + list(s.roles.values())
    if s.acknowledged_by:
        ids.append(s.acknowledged_by)
    people = []
    for pid in dict.fromkeys(ids):
        rec = person(pid)
        people.append(ChatPerson(id=pid, name=rec.name if rec else "", slack=rec.slack if rec else None))
    return RelaySnapshot(
        number=s.number,
        title=s.title,
        severity=s.severity.value,
        status=s.status.value,
        summary=s.summary,
        declared_at=s.declared_at,
        declared_by=s.declared_by,
        acknowledged_by=s.acknowledged_by,
        roles={r.value: p for r, p in s.roles.items()},
        people=people,
        deadlines=deadlines,
        runbook_runs=[f"#{r.run} {r.title}: {r.status.value}" for r in s.runbook_runs],
        components=list(s.components),
        phase=(s.public_phase.value if phase and s.status in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED)
               else None),
    )


def view_of(snap: RelaySnapshot) -> str:
    """What a target was last sent, to compare with: without the phase when there is none, so
    an incident mirrored before the phase existed compares exactly as it did then."""
    return snap.model_dump_json(exclude={"phase"} if snap.phase is None else None)


class Relay:
    """The incident workflow's chat loops; it owns no state of its own beyond what is in flight."""

    def __init__(
        self,
        state: Callable[[], IncidentState],
        policy: Callable[[], Policy],
        deadlines: Callable[[], list[Deadline]],
        person: Callable[[str], Person | None],
        log: Callable[[str, str], None],
        paused: Callable[[], bool],
    ) -> None:
        self._state, self._policy, self._deadlines = state, policy, deadlines
        self._person, self._log, self._paused = person, log, paused
        self._busy: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._phase = False

    def start(self) -> None:
        names = [name for name in self._state().relay.targets if name in ACTIVITIES]
        if names:
            self._phase = workflow.patched(PHASE_PATCH)
        for name in names:
            self._tasks.append(asyncio.ensure_future(self._loop(name)))

    def _view(self) -> RelaySnapshot:
        return snapshot(self._state(), self._deadlines(), self._person, self._phase)

    def _last_seq(self) -> int:
        timeline = self._state().timeline
        return timeline[-1].seq if timeline else 0

    def _behind(self, t: RelayTarget) -> bool:
        """Something the target does not have yet, and not just what its last failed try had."""
        if t.off:
            return False
        seq, view = self._last_seq(), view_of(self._view())
        if seq <= t.seq and view == t.view:
            return False
        return not t.failing or seq > t.tried_seq or view != t.tried_view

    def settled(self) -> bool:
        """Nothing in flight and nothing to send (or the target is failing): the incident may end."""
        if self._busy:
            return False
        targets = self._state().relay.targets
        return all(t.off or t.failing or not self._behind(t) for n, t in targets.items() if n in ACTIVITIES)

    def in_flight(self) -> bool:
        return bool(self._busy)

    async def _loop(self, name: str) -> None:
        while True:
            t = self._state().relay.targets[name]
            if t.off:
                return
            ready = lambda: not self._paused() and self._behind(t)  # noqa: E731
            if t.failing:
                retry = max(self._policy().chat_retry_every, MIN_RETRY)
                try:
                    await workflow.wait_condition(ready, timeout=retry)
                except asyncio.TimeoutError:
                    if self._paused():
                        continue
                    t.tried_seq, t.tried_view = -1, ""  # the timer: try again whatever is pending
                    if not self._behind(t):
                        continue
            else:
                await workflow.wait_condition(ready)
            await self._send(name, t)

    async def _send(self, name: str, t: RelayTarget) -> None:
        s = self._state()
        entries = [e for e in s.timeline if e.seq > t.seq][:MAX_ENTRIES]
        snap = self._view()
        view = view_of(snap)
        sent_to = entries[-1].seq if entries else t.seq
        self._busy.add(name)
        try:
            result: RelayResult = await workflow.execute_activity(
                ACTIVITIES[name],
                RelayInput(snapshot=snap, entries=entries),
                result_type=RelayResult,
                start_to_close_timeout=RELAY_TIMEOUT,
                retry_policy=RELAY_RETRY,
            )
        except ActivityError as err:
            t.tried_seq, t.tried_view = self._last_seq(), view
            if not t.failing:
                t.failing = True
                cause = err.cause
                why = getattr(cause, "message", None) or str(cause or err)
                self._log(name, f"{LABELS[name]} is failing ({why}); the response goes on without it, "
                                f"and it catches up when it answers again")
                t.tried_seq = self._last_seq()
            return
        finally:
            self._busy.discard(name)
        if not result.enabled:
            t.off = True
            return
        t.seq = max(t.seq, sent_to)
        t.view = view
        for note in result.notes:
            self._log(name, note)
        if t.failing:
            t.failing = False
            self._log(name, f"{LABELS[name]} answers again; everything since the failure has been sent")
