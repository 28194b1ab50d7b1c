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

Every stored version that changes something is in the audit log with what it changed
(``change_summary``): the API's row of the request that made it, or a row written here for a
version loaded from the file (``audit_config_change``).
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
from warroom.models.tables import AuditRow, OnCallConfigRow

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
    """The top-level keys whose value differs."""
    before = before or {}
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


NAMED = ("people", "teams", "schedules", "escalation_policies")
"""Keys holding things by name: a change says which were added, removed or changed (and which of
their keys), never their values (people's values are phone numbers and addresses)."""
SHOWN_UP_TO = 200
"""Any other key's old and new values are shown when each is at most this long as JSON."""


def _keys_changed(old: Any, new: Any) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return changed_keys(old, new)
    return []


def change_summary(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """What changed from ``before`` (None: nothing stored yet) to ``after``, fit for the audit log.

    ``people``, ``teams``, ``schedules``, ``escalation_policies``: ``{"added": [names],
    "removed": [names], "changed": {name: [its keys that changed]}}``. Any other key: ``{"from":
    old, "to": new}`` when both are short (durations, severities, ``engineering_lead``, the default
    escalation), else the keys or the number of entries that changed. Policies hold no secrets;
    contact details sit only under ``people``, whose values are never shown."""
    if before is None:
        return {key: {"added": sorted(after[key])} for key in NAMED if isinstance(after.get(key), dict) and after[key]}
    out: dict[str, Any] = {}
    for key in changed_keys(before, after):
        old, new = before.get(key), after.get(key)
        if key in NAMED and isinstance(old or {}, dict) and isinstance(new or {}, dict):
            old, new = old or {}, new or {}
            entry: dict[str, Any] = {}
            if added := sorted(set(new) - set(old)):
                entry["added"] = added
            if removed := sorted(set(old) - set(new)):
                entry["removed"] = removed
            changed = {n: _keys_changed(old[n], new[n]) for n in sorted(set(old) & set(new)) if old[n] != new[n]}
            if changed:
                entry["changed"] = changed
            out[key] = entry
        elif all(len(json.dumps(v, ensure_ascii=False)) <= SHOWN_UP_TO for v in (old, new)):
            out[key] = {"from": old, "to": new}
        elif isinstance(old, list) and isinstance(new, list):
            out[key] = {"entries": [len(old), len(new)]}
        else:
            out[key] = {"changed": _keys_changed(old, new)}
    return out


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def describe_change(summary: dict[str, Any], first: bool = False) -> str:
    """``change_summary`` in one line: ``people added: dora; schedules changed: platform-primary
    (overrides); ack_timeout: 10m -> 7m``."""
    parts = []
    for key, entry in summary.items():
        if "added" in entry:
            parts.append(f"{key} {'' if first else 'added: '}{', '.join(entry['added'])}")
        if "removed" in entry:
            parts.append(f"{key} removed: {', '.join(entry['removed'])}")
        if isinstance(entry.get("changed"), dict):
            named = [f"{n} ({', '.join(keys)})" if keys else n for n, keys in entry["changed"].items()]
            parts.append(f"{key} changed: {', '.join(named)}")
        elif "changed" in entry:
            parts.append(f"{key} changed" + (f" ({', '.join(entry['changed'])})" if entry["changed"] else ""))
        if "from" in entry:
            parts.append(f"{key}: {_shown(entry['from'])} -> {_shown(entry['to'])}")
        if "entries" in entry:
            parts.append(f"{key} changed ({entry['entries'][0]} -> {entry['entries'][1]} entries)")
    text = "; ".join(parts) or "nothing"
    return f"first version: {text}" if first else text


@dataclass(frozen=True)
class ConfigChange:
    """One stored version and what it changed, for the audit log."""

    version: int
    previous: int | None
    """The version it replaced (None: the first)."""
    source: str
    actor: str
    at: datetime
    summary: dict[str, Any]
    origin: str = ""

    @property
    def text(self) -> str:
        what = describe_change(self.summary, first=self.previous is None)
        return f"version {self.version}: {what}"

    @property
    def detail(self) -> str:
        data = {"version": self.version, "previous": self.previous, "changes": self.summary}
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
        return text if len(text) <= 4000 else json.dumps(
            {"version": self.version, "previous": self.previous, "changed": sorted(self.summary)})


FILE_ACTOR = "policy-file"
"""The actor of a version loaded from the policy file at start-up."""


def audit_config_change(session: Session, change: ConfigChange, *, where: str = "") -> None:
    """THE place where a configuration change that no HTTP request made is written to the audit
    log: a version loaded from the policy file at start-up (actor ``policy-file``, the file as
    the path, ``where`` the process that loaded it), or one stored by code. Called inside the
    transaction that stores the version, so the row commits or rolls back with it.

    A change made through ``PUT``/``PATCH /api/oncall/config`` is already one row of the API's
    audit log (who, when, from which address); the route adds ``change.text`` and
    ``change.detail`` to that row instead of writing a second one."""
    from_file = change.source == "file"
    session.add(AuditRow(
        at=change.at,
        actor=(FILE_ACTOR if from_file else change.actor)[:200],
        role=None,
        credential="policy file" if from_file else "none",
        action="load_policy_file" if from_file else "store_config",
        method="START" if from_file else "",
        path=change.origin[:2000],
        incident_number=None,
        target=f"version={change.version}",
        accepted=True,
        status_code=0,
        reason=change.text[:4000],
        client_ip=None,
        user_agent=where[:300] or None,
        detail=change.detail,
    ))
    session.flush()
    log.info("configuration %s by %s: %s", "loaded from " + change.origin if from_file else "stored",
             change.actor, change.text[:500])


def latest(session: Session) -> OnCallConfigRow | None:
    return session.scalar(select(OnCallConfigRow).order_by(OnCallConfigRow.version.desc()).limit(1))


@dataclass(frozen=True)
class Stored:
    row: OnCallConfigRow
    changed: bool
    """False when ``document`` equals the newest version (nothing was stored)."""
    change: ConfigChange | None
    """What the new version changed; None when nothing was stored."""


def store_version(
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
    audited_by_request: bool = False,
    where: str = "",
) -> Stored:
    """Validate ``document`` and store it as the newest version. Raises ``PolicyError`` naming
    the bad key, or ``ConfigConflict`` when ``expected_version`` is not the newest.

    A stored version that changes something is written to the audit log here, unless
    ``audited_by_request``: an API request's own audit row then carries ``change``. A policy
    file whose bytes changed but whose content equals the version in force is stored (so a
    restart knows it was seen) without an audit row: nothing in force changed."""
    document = json_document(document)
    parse_policy(document, "configuration")
    current = latest(session)
    have = current.version if current is not None else 0
    if expected_version is not None and expected_version != have:
        raise ConfigConflict(f"the configuration is at version {have}, not {expected_version}; reload and retry")
    dig = digest(document)
    if current is not None and current.digest == dig and file_digest is None:
        return Stored(current, False, None)
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
    change = ConfigChange(
        version=row.version, previous=current.version if current is not None else None, source=source,
        actor=actor, at=now, summary=change_summary(current.document if current is not None else None, document),
        origin=origin,
    )
    if not audited_by_request and (change.summary or change.previous is None):
        audit_config_change(session, change, where=where)
    return Stored(row, True, change)


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
    """``store_version`` for callers outside a request: (row, whether it was stored); the
    change goes to the audit log."""
    stored = store_version(session, document, source=source, actor=actor, now=now, expected_version=expected_version,
                           origin=origin, file_digest=file_digest, note=note)
    return stored.row, stored.changed


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


def seed_from_file(engine: Engine, path: Path, now: datetime, where: str = "") -> tuple[int, bool]:
    """Store the policy file as the newest version if the database has none or the file
    changed since it was last seeded; (newest version, whether the file was stored). A version
    that changes what is in force is written to the audit log (actor ``policy-file``, the file's
    path, and ``where``: the process that loaded it)."""
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
                stored = store_version(
                    session, document, source="file", actor="policy file", now=now,
                    origin=str(path), file_digest=file_digest,
                    expected_version=current.version if current is not None else 0, where=where,
                )
                return stored.row.version, True
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
