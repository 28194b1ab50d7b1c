"""The configuration in force: versions of the policy document in the read model's database.

The policy file (``WARROOM_POLICY``, checked in and reviewed) seeds it when a
process starts; ``PUT``/``PATCH /api/oncall/config`` add versions. The newest
version is what new incidents are declared with and what escalation levels are
resolved against when they fall due (``resolve_targets``), so every API replica
and worker sees the same configuration without restarting.

Seeding rule: a start stores the file as a new version when the database has
none, or when the file's bytes differ from the file last seeded (the file is
newer: someone changed and deployed it). A start with the same file leaves the
database alone, so an edit made through the API survives a restart until the
file itself changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from threading import Lock
from typing import Any

import yaml
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warroom.models.policy import Policy, PolicyError, parse_policy
from warroom.models.tables import OnCallConfigRow

log = logging.getLogger("warroom.audit")

MAX_DOCUMENT_BYTES = 1_000_000


class ConfigConflict(Exception):
    """The caller edited a version that is no longer the newest."""


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def json_document(data: Any) -> dict[str, Any]:
    """A YAML- or JSON-loaded document as plain JSON (YAML turns dates into objects)."""
    if not isinstance(data, dict):
        raise PolicyError("configuration: the document must be a mapping of keys to values")
    try:
        return dict(json.loads(json.dumps(data, default=_plain)))
    except (TypeError, ValueError) as err:
        raise PolicyError(f"configuration: {err}") from None


def digest(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def changed_keys(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """The top-level keys whose value differs (what an audit line says changed)."""
    before = before or {}
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def audit_config_change(session: Session, *, actor: str, action: str, version: int, detail: str) -> None:
    """THE place where a configuration change is recorded for the audit log.

    Called inside the transaction that stores the version, so an audit row written
    here commits or rolls back with it. Until the audit log exists it writes a log
    line; the version rows themselves keep who changed what and when."""
    log.info("configuration %s by %s: version %d (%s)", action, actor, version, detail)


def latest(session: Session) -> OnCallConfigRow | None:
    return session.scalar(select(OnCallConfigRow).order_by(OnCallConfigRow.version.desc()).limit(1))


def save_version(
    session: Session,
    document: dict[str, Any],
    *,
    source: str,
    actor: str,
    now: datetime,
    expected_version: int | None = None,
    origin: str = "",
    file_digest: str | None = None,
    note: str = "",
) -> tuple[OnCallConfigRow, bool]:
    """Validate ``document`` and store it as the newest version; (row, False) when it
    equals the newest version already (nothing stored). Raises ``PolicyError`` naming
    the bad key, or ``ConfigConflict`` when ``expected_version`` is not the newest."""
    document = json_document(document)
    parse_policy(document, "configuration")
    current = latest(session)
    have = current.version if current is not None else 0
    if expected_version is not None and expected_version != have:
        raise ConfigConflict(f"the configuration is at version {have}, not {expected_version}; reload and retry")
    dig = digest(document)
    if current is not None and current.digest == dig and file_digest is None:
        return current, False
    row = OnCallConfigRow(
        version=have + 1,
        document=document,
        digest=dig,
        source=source,
        origin=origin,
        file_digest=file_digest,
        created_at=now,
        created_by=actor[:200],
        note=note,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise ConfigConflict(f"version {have + 1} was stored by someone else meanwhile; reload and retry") from None
    keys = changed_keys(current.document if current is not None else None, document)
    audit_config_change(
        session,
        actor=actor,
        action="seeded from file" if source == "file" else "replaced",
        version=row.version,
        detail="first version" if current is None else "changed: " + (", ".join(keys) if keys else "nothing"),
    )
    return row, True


def read_policy_file(path: Path) -> tuple[dict[str, Any], str]:
    """The policy file as a validated JSON document, and the digest of its bytes."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: the policy must be a mapping of keys to values")
    document = json_document(data)
    parse_policy(document, str(path))
    return document, hashlib.sha256(raw).hexdigest()


def seed_from_file(engine: Engine, path: Path, now: datetime) -> tuple[int, bool]:
    """Store the policy file as the newest version if the database has none or the file
    changed since it was last seeded; (newest version, whether the file was stored)."""
    document, file_digest = read_policy_file(path)
    for _attempt in range(5):
        try:
            with Session(engine) as session, session.begin():
                last_file = session.scalar(
                    select(OnCallConfigRow)
                    .where(OnCallConfigRow.source == "file")
                    .order_by(OnCallConfigRow.version.desc())
                    .limit(1)
                )
                current = latest(session)
                if current is not None and last_file is not None and last_file.file_digest == file_digest:
                    return current.version, False
                row, _ = save_version(
                    session, document, source="file", actor="policy file", now=now,
                    origin=str(path), file_digest=file_digest,
                    expected_version=current.version if current is not None else 0,
                )
                return row.version, True
        except ConfigConflict:
            continue  # another process seeded at the same moment: look again
    raise RuntimeError("could not store the policy file: the configuration keeps changing")


@dataclass(frozen=True)
class Current:
    version: int
    policy: Policy
    document: dict[str, Any]
    source: str
    created_at: datetime
    created_by: str


class CurrentConfig:
    """Reads the newest version, parsing it again only when the version changed."""

    def __init__(self, engine: Engine, on_change: Callable[[Current], None] | None = None) -> None:
        self._engine = engine
        self._cached: Current | None = None
        self._lock = Lock()
        self._on_change = on_change

    def get(self) -> Current | None:
        with Session(self._engine) as session:
            version = session.scalar(select(OnCallConfigRow.version).order_by(OnCallConfigRow.version.desc()).limit(1))
            if version is None:
                return None
            cached = self._cached
            if cached is not None and cached.version == version:
                return cached
            row = session.get(OnCallConfigRow, version)
            assert row is not None
            current = Current(
                version=row.version,
                policy=parse_policy(row.document, f"configuration version {row.version}"),
                document=row.document,
                source=row.source,
                created_at=row.created_at,
                created_by=row.created_by,
            )
        with self._lock:
            if self._cached is None or self._cached.version < current.version:
                self._cached = current
        if self._on_change is not None:
            self._on_change(current)
        return current
