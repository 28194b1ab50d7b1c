"""The pure rules of access control, table-style."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warroom.auth import crypto
from warroom.models.access import (
    Bucket,
    Role,
    credential_problem,
    lower_of,
    password_problem,
    safe_next,
    split_token,
    user_id_problem,
)

T = datetime(2026, 11, 30, 2, 41, tzinfo=UTC)
V, R, O, A = Role.VIEWER, Role.RESPONDER, Role.OPERATOR, Role.ADMIN


@pytest.mark.parametrize(("role", "required", "allowed"), [
    (V, V, True), (V, R, False), (R, R, True), (R, O, False), (O, R, True), (O, A, False), (A, O, True), (A, A, True),
    # Alphabetically "admin" < "viewer" and "operator" < "responder": ranks, never strings.
    (V, A, False), (R, O, False),
])
def test_each_role_may_do_what_the_ones_below_may(role: Role, required: Role, allowed: bool) -> None:
    assert role.at_least(required) is allowed


@pytest.mark.parametrize(("user", "cap", "effective"), [
    (A, None, A), (A, V, V), (O, R, R), (R, A, R), (V, V, V),
])
def test_a_token_never_has_more_rights_than_its_user(user: Role, cap: Role | None, effective: Role) -> None:
    assert lower_of(user, cap) == effective


@pytest.mark.parametrize(("user_id", "ok"), [
    ("alice", True), ("deploy-bot", True), ("a.b_c@d", True), ("9lives", True),
    ("Alice", False), ("", False), ("-alice", False), ("al ice", False), ("a" * 101, False), ("al/ice", False),
])
def test_user_ids(user_id: str, ok: bool) -> None:
    assert (user_id_problem(user_id) is None) is ok


@pytest.mark.parametrize(("password", "problem"), [
    ("correct horse battery", None), ("short", "at least 12"), (" " * 12, "only spaces"), ("x" * 1025, "at most"),
])
def test_passwords(password: str, problem: str | None) -> None:
    found = password_problem(password)
    assert found is None if problem is None else problem in (found or "")


def test_tokens_are_recognised_by_kind_and_prefix() -> None:
    token, secret = crypto.new_token("wr"), crypto.new_token("wri")
    assert split_token(token.value, "wr") == token.prefix and split_token(token.value, "wri") is None
    assert split_token(secret.value, "wri") == secret.prefix and split_token(secret.value, "wr") is None
    assert token.shown == f"wr_{token.prefix}" and secret.shown == f"wri_{secret.prefix}"
    for garbage in ("", "wr_", "wr_xyz_abc", f"wr_{token.prefix}_short", "Bearer " + token.value, token.value + "!"):
        assert split_token(garbage, "wr") is None, garbage
    assert crypto.same_digest(token.value, token.hash) and not crypto.same_digest(token.value + "x", token.hash)
    assert token.value not in token.hash


@pytest.mark.parametrize(("expires", "revoked", "disabled", "problem"), [
    (T + timedelta(seconds=1), None, None, None),
    (T, None, None, "expired at 2026-11-30 02:41 UTC"),
    (T - timedelta(days=1), T - timedelta(hours=1), None, "revoked at 2026-11-30 01:41 UTC"),  # revoked wins
    (T + timedelta(days=1), None, T - timedelta(days=3), "user bob is disabled"),
    (None, None, None, None),
])
def test_why_a_credential_no_longer_counts(
    expires: datetime | None, revoked: datetime | None, disabled: datetime | None, problem: str | None
) -> None:
    found = credential_problem(now=T, expires_at=expires, revoked_at=revoked, disabled_at=disabled,
                               what="API token wr_1", owner="bob")
    assert found == problem if problem is None else problem in (found or "")


@pytest.mark.parametrize(("target", "goes_to"), [
    ("/incidents/4", "/incidents/4"), ("/account?tab=tokens", "/account?tab=tokens"), (None, "/console"),
    ("", "/console"), ("https://evil.example/", "/console"), ("//evil.example/", "/console"),
    ("/\\evil.example", "/console"), ("incidents", "/console"), ("/ok\r\nSet-Cookie: x=1", "/console"),
])
def test_after_sign_in_only_paths_on_this_site(target: str | None, goes_to: str) -> None:
    assert safe_next(target) == goes_to


@pytest.mark.parametrize(("tokens", "elapsed", "after"), [
    (0.0, 0, 0.0), (0.0, 30, 3.0), (2.0, 3600, 5.0), (4.5, -10, 4.5),
])
def test_a_bucket_refills_at_its_rate_up_to_its_capacity(tokens: float, elapsed: float, after: float) -> None:
    assert Bucket(capacity=5, per_minute=6).refill(tokens, elapsed) == pytest.approx(after)


@pytest.mark.parametrize(("tokens", "wait"), [(1.0, 0), (0.9, 1), (0.0, 10), (-0.5, 15)])
def test_retry_after_is_the_time_to_one_token(tokens: float, wait: int) -> None:
    assert Bucket(capacity=5, per_minute=6).retry_after(tokens) == wait


def test_password_hashes_are_salted_and_checked() -> None:
    first, second = crypto.hash_password("correct horse battery"), crypto.hash_password("correct horse battery")
    assert first != second and first.startswith("scrypt$32768$8$1$")
    assert crypto.verify_password("correct horse battery", first)
    assert not crypto.verify_password("correct horse batterz", first)
    assert not crypto.verify_password("correct horse battery", None)
    assert not crypto.verify_password("anything", "md5$abc")
    assert not crypto.verify_password("anything", "scrypt$not$a$hash$at$all")


def test_the_rules_and_the_admin_cli_import_no_http_layer() -> None:
    """Arrows point one way: api -> auth -> models. The rules need neither a database nor FastAPI."""
    import subprocess
    import sys

    probe = (
        "import sys, warroom.models.access; pure = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'fastapi', 'starlette')); import warroom.auth.cli; "
        "print(pure, sorted(m for m in sys.modules if m.startswith('warroom.api')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"
