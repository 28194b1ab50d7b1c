"""Credentials and rate limits in a real (SQLite) database, with explicit instants."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from warroom.auth import store
from warroom.models.access import Bucket, Role
from warroom.models.tables import ApiTokenRow, RateLimitRow

T = datetime(2026, 11, 30, 2, 41, tzinfo=UTC)
PASSWORD = "correct horse battery"


def run(engine: Engine, fn):  # type: ignore[no-untyped-def]
    """``fn`` in one transaction; rows it returns stay readable afterwards."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return fn(session)


def test_a_token_is_stored_as_a_hash_and_identifies_its_user_until_it_expires(engine: Engine) -> None:
    run(engine, lambda s: store.create_user(s, "bob", name="Bob", role=Role.OPERATOR, password=None, by="t", now=T))
    value, row = run(engine, lambda s: store.issue_token(s, "bob", name="cli", expires_at=T + timedelta(days=1),
                                                          by="t", now=T))
    with Session(engine) as session:
        stored = session.scalars(select(ApiTokenRow)).one()
        assert value not in (stored.token_hash, stored.prefix) and value.split("_", 2)[2] not in stored.token_hash

    caller = run(engine, lambda s: store.caller_for_token(s, value, T + timedelta(hours=1)))
    assert (caller.user, caller.role, caller.via) == ("bob", Role.OPERATOR, "token")
    assert caller.credential == f"token wr_{row.prefix}"

    forged = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")  # right prefix, wrong secret
    with pytest.raises(store.Unauthenticated, match="unknown API token"):
        run(engine, lambda s: store.caller_for_token(s, forged, T))
    with pytest.raises(store.Unauthenticated, match="expired") as expired:
        run(engine, lambda s: store.caller_for_token(s, value, T + timedelta(days=1)))
    assert expired.value.actor == "bob"


def test_last_used_is_written_at_most_once_a_minute(engine: Engine) -> None:
    run(engine, lambda s: store.create_user(s, "bob", name="", role=Role.VIEWER, password=None, by="t", now=T))
    value, _ = run(engine, lambda s: store.issue_token(s, "bob", name="x", expires_at=T + timedelta(days=1),
                                                        by="t", now=T))

    def last_used() -> datetime | None:
        with Session(engine) as session:
            return session.scalars(select(ApiTokenRow.last_used_at)).one()

    for seconds, expect in ((0, T), (30, T), (61, T + timedelta(seconds=61))):
        at = T + timedelta(seconds=seconds)
        run(engine, lambda s, at=at: store.caller_for_token(s, value, at))
        assert last_used() == expect


def test_tokens_are_refused_beyond_their_lifetime_limits(engine: Engine) -> None:
    run(engine, lambda s: store.create_user(s, "bob", name="", role=Role.VIEWER, password=None, by="t", now=T))
    for expires, reason in ((T, "in the future"), (T + timedelta(days=731), "at most 730 days")):
        with pytest.raises(store.Invalid, match=reason):
            run(engine, lambda s, e=expires: store.issue_token(s, "bob", name="x", expires_at=e, by="t", now=T))
    with pytest.raises(store.NotFound):
        run(engine, lambda s: store.issue_token(s, "nobody", name="x", expires_at=T + timedelta(days=1), by="t", now=T))


def test_sign_in_checks_the_password_and_says_why_only_to_the_audit_log(engine: Engine) -> None:
    run(engine, lambda s: store.create_user(s, "erin", name="Erin", role=Role.RESPONDER, password=PASSWORD,
                                            by="t", now=T))
    run(engine, lambda s: store.create_user(s, "bot", name="Bot", role=Role.RESPONDER, password=None, by="t", now=T))
    user = run(engine, lambda s: store.check_login(s, " Erin ", PASSWORD, T))
    assert user.id == "erin" and user.last_login_at == T
    for who, password, reason in (("erin", "wrong password!!", "wrong password"), ("zed", PASSWORD, "unknown user"),
                                  ("bot", PASSWORD, "no password")):
        with pytest.raises(store.Unauthenticated, match=reason):
            run(engine, lambda s, w=who, p=password: store.check_login(s, w, p, T))
    run(engine, lambda s: store.update_user(s, "erin", now=T, disabled=True))
    with pytest.raises(store.Unauthenticated, match="disabled"):
        run(engine, lambda s: store.check_login(s, "erin", PASSWORD, T))


def test_a_session_ends_when_it_expires_is_closed_or_the_password_changes(engine: Engine) -> None:
    user = run(engine, lambda s: store.create_user(s, "erin", name="Erin", role=Role.RESPONDER, password=PASSWORD,
                                                   by="t", now=T))
    hour = timedelta(hours=1)

    def open_one() -> tuple[str, str]:
        value, row = run(engine, lambda s: store.open_session(s, s.merge(user), now=T, lifetime=hour,
                                                                client_ip="203.0.113.9", user_agent="Firefox"))
        return value, row.id_hash

    first, first_id = open_one()
    caller = run(engine, lambda s: store.caller_for_session(s, first, T))
    assert caller.via == "session" and caller.csrf and caller.session_id == first_id
    with pytest.raises(store.Unauthenticated, match="expired"):
        run(engine, lambda s: store.caller_for_session(s, first, T + hour))
    with pytest.raises(store.Unauthenticated, match="not valid"):
        run(engine, lambda s: store.caller_for_session(s, first + "x", T))

    second, second_id = open_one()
    run(engine, lambda s: store.update_user(s, "erin", now=T, password="another long password",
                                            keep_session=second_id))
    with pytest.raises(store.Unauthenticated, match="has ended"):
        run(engine, lambda s: store.caller_for_session(s, first, T))
    assert run(engine, lambda s: store.caller_for_session(s, second, T)).user == "erin"
    run(engine, lambda s: store.end_session(s, second_id, T))
    with pytest.raises(store.Unauthenticated, match="has ended"):
        run(engine, lambda s: store.caller_for_session(s, second, T))


def test_an_integration_secret_works_for_its_source_until_revoked(engine: Engine) -> None:
    secret, row = run(engine, lambda s: store.create_integration(s, "prod-am", source="alertmanager", by="t", now=T))
    found = run(engine, lambda s: store.integration_for(s, secret, "alertmanager", T))
    assert found.name == "prod-am" and found.last_used_at == T
    with pytest.raises(store.Unauthenticated, match="not grafana"):
        run(engine, lambda s: store.integration_for(s, secret, "grafana", T))
    run(engine, lambda s: store.revoke_integration(s, row.id, by="t", now=T))
    with pytest.raises(store.Unauthenticated, match="revoked"):
        run(engine, lambda s: store.integration_for(s, secret, "alertmanager", T))
    with pytest.raises(store.Invalid, match="unknown alert source"):
        run(engine, lambda s: store.create_integration(s, "x", source="nagios", by="t", now=T))


def test_a_bucket_allows_its_burst_then_one_request_per_refill(engine: Engine) -> None:
    bucket = Bucket(capacity=3, per_minute=6)  # one token every 10 s
    t0 = T.timestamp()

    def take(at: float, key: str = "login:203.0.113.9") -> int:
        return run(engine, lambda s: store.take(s, key, bucket, at))

    assert [take(t0) for _ in range(4)] == [0, 0, 0, 10]
    assert take(t0 + 5) == 5, "half a token back: 5 s to go"
    assert take(t0 + 10) == 0 and take(t0 + 10) == 10
    assert take(t0 + 10, "login:198.51.100.7") == 0, "every address has its own bucket"
    assert take(t0 + 3600) == 0 and [take(t0 + 3600) for _ in range(2)] == [0, 0] and take(t0 + 3600) == 10


def test_concurrent_takes_never_spend_a_token_twice(engine: Engine) -> None:
    """The refill and the take are one UPDATE: 20 threads at one instant get exactly the burst."""
    bucket = Bucket(capacity=5, per_minute=0.0001)
    now = T.timestamp()
    run(engine, lambda s: store.take(s, "webhook:x", bucket, now))  # the row exists: 4 tokens left

    def take(_: int) -> int:
        return run(engine, lambda s: store.take(s, "webhook:x", bucket, now))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(take, range(20)))
    assert results.count(0) == 4
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(RateLimitRow)) == 1
