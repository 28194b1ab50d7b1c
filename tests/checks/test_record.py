"""The record activity of uptime checks on a real read model: fail N times, fire once, resolve
once, and a retried run answers what it answered the first time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from warroom.activities.uptime import UptimeActivities
from warroom.models.checks import CheckSpec, Observation, RecordCheckInput

T0 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
SPEC = CheckSpec.model_validate({"name": "mx", "kind": "tcp", "component": "email", "host": "mx.example.com",
                                 "port": 25, "every": "1m", "timeout": "5s", "fail_after": 2})


def run(acts: UptimeActivities, n: int, ok: bool, run_id: str | None = None) -> tuple[str, str | None, datetime | None]:
    seen = Observation(at=T0 + timedelta(minutes=n), latency_seconds=0.01) if ok else Observation(
        at=T0 + timedelta(minutes=n), error="cannot connect: refused")
    result = acts.record(RecordCheckInput(spec=SPEC, observation=seen, run_id=run_id or f"run-{n}"))
    alert = result.alert
    return result.action, alert.status if alert else None, alert.starts_at if alert else None


def test_fire_once_resolve_once_and_retries_answer_the_same(engine: Engine) -> None:
    acts = UptimeActivities(engine)
    assert run(acts, 0, ok=False) == ("none", None, None)
    fired = run(acts, 1, ok=False)
    assert fired == ("fire", "firing", T0 + timedelta(minutes=1))
    assert run(acts, 1, ok=False, run_id="run-1") == fired  # the same run retried: same answer, no new count
    assert run(acts, 2, ok=False) == ("none", None, None)  # still down: no second alert
    resolved = run(acts, 3, ok=True)
    assert resolved == ("resolve", "resolved", T0 + timedelta(minutes=1))  # the episode it fired for
    assert run(acts, 3, ok=True, run_id="run-3") == resolved
    assert run(acts, 4, ok=True) == ("none", None, None)
