"""Everything the public status page shows, read once from the read model and
rendered as HTML, Statuspage-v2-shaped JSON and Atom.

The same code serves the live page (``warroom.api.statuspage``) and the static
export (``warroom.statuspage.export``): :func:`load` takes one consistent
snapshot, :func:`build` turns it into a view (pure: an explicit ``now``), and
the ``render_*`` functions produce the documents. Only ``links`` differ
between serving and exporting.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from warroom.models.components import (
    Catalog,
    Component,
    ComponentState,
    Held,
    Impact,
    Indicator,
    Maintenance,
    component_states,
    describe,
    holds,
    incident_impact,
    overall,
    states_held,
)
from warroom.models.incident import PublicPhase, StatusKind, entered_monitoring_at, phases_in_force
from warroom.models.severity import Severity
from warroom.models.tables import ComponentImpactRow, IncidentRow, MaintenanceRow, StatusUpdateRow
from warroom.models.uptime import Day, StateInterval, daily, format_percent, window_uptime

OPEN_STATUSES = ("triggered", "acknowledged")
UPTIME_DAYS = 90
HISTORY_DAYS = 14
RECENT_INCIDENTS = 50
TEMPLATES = Path(__file__).parent / "templates"

_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "xml"]))


# --- the snapshot ------------------------------------------------------------------------


@dataclass
class UpdateRec:
    seq: int
    at: datetime
    kind: str
    message: str
    phase: str | None = None
    """The phase the update set, as stored (None: it kept the one in force)."""
    shown: PublicPhase = PublicPhase.INVESTIGATING
    """The phase in force once it was posted: its own, or the one before it."""

    @property
    def status(self) -> str:
        """Its status on the page: the phase it showed, or resolved for the resolution notice."""
        return "resolved" if self.kind == StatusKind.RESOLUTION.value else self.shown.value


@dataclass
class IncidentRec:
    number: int
    title: str
    severity: Severity
    max_severity: Severity
    status: str
    components: list[str]
    declared_at: datetime
    resolved_at: datetime | None
    updated_at: datetime
    updates: list[UpdateRec] = field(default_factory=list)
    """Newest first."""
    impact_started_at: datetime | None = None

    @property
    def started_at(self) -> datetime:
        """When customers began to feel it: the impact's start when known (an alert's startsAt, or
        what a responder entered), else the declaration. Never after the declaration."""
        if self.impact_started_at is None:
            return self.declared_at
        return min(self.impact_started_at, self.declared_at)

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def phase(self) -> PublicPhase:
        """Where the incident stands now (what its latest update showed)."""
        return self.updates[0].shown if self.updates else PublicPhase.INVESTIGATING

    @property
    def monitoring_at(self) -> datetime | None:
        return entered_monitoring_at((u.at, u.phase) for u in reversed(self.updates))


@dataclass
class MaintenanceRec:
    id: int
    title: str
    description: str
    components: list[str]
    starts_at: datetime
    ends_at: datetime
    created_at: datetime


@dataclass
class Snapshot:
    incidents: list[IncidentRec]
    impacts: list[Impact]
    maintenance: list[MaintenanceRec]


def load(session: Session, now: datetime) -> Snapshot:
    """Open incidents, the recent ones, impact intervals and maintenance of the last 90 days."""
    since = now - timedelta(days=UPTIME_DAYS + 1)
    rows = list(
        session.scalars(
            select(IncidentRow)
            .where(or_(IncidentRow.status.in_(OPEN_STATUSES), IncidentRow.declared_at >= since))
            .order_by(IncidentRow.declared_at.desc(), IncidentRow.number.desc())
        )
    )
    incidents = _incident_recs(session, rows)
    impacts = [
        Impact(
            incident=i.incident_number,
            component=i.component,
            state=ComponentState(i.state),
            start=i.started_at,
            end=i.ended_at,
        )
        for i in session.scalars(
            select(ComponentImpactRow).where(or_(ComponentImpactRow.ended_at.is_(None), ComponentImpactRow.ended_at >= since))
        )
    ]
    maintenance = [
        MaintenanceRec(
            id=m.id,
            title=m.title,
            description=m.description,
            components=list(m.components or []),
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            created_at=m.created_at,
        )
        for m in session.scalars(
            select(MaintenanceRow)
            .where(MaintenanceRow.cancelled_at.is_(None), MaintenanceRow.ends_at >= since)
            .order_by(MaintenanceRow.starts_at)
        )
    ]
    return Snapshot(incidents=incidents, impacts=impacts, maintenance=maintenance)


def _incident_recs(session: Session, rows: list[IncidentRow]) -> list[IncidentRec]:
    numbers = [r.number for r in rows]
    updates: dict[int, list[UpdateRec]] = defaultdict(list)
    if numbers:
        for u in session.scalars(
            select(StatusUpdateRow)
            .where(StatusUpdateRow.incident_number.in_(numbers))
            .order_by(StatusUpdateRow.at.desc(), StatusUpdateRow.seq.desc())
        ):
            updates[u.incident_number].append(
                UpdateRec(seq=u.seq, at=u.at, kind=u.kind, message=u.message, phase=u.phase)
            )
    incidents = []
    for r in rows:
        ups = updates.get(r.number, [])
        oldest_first = ups[::-1]
        for u, shown in zip(oldest_first, phases_in_force(u.phase for u in oldest_first), strict=True):
            u.shown = shown
        incidents.append(
            IncidentRec(
                number=r.number,
                title=r.title,
                severity=Severity(r.severity),
                max_severity=Severity(r.state.get("max_severity", r.severity)),
                status=r.status,
                components=list(r.components or []),
                declared_at=r.declared_at,
                resolved_at=r.resolved_at,
                impact_started_at=r.impact_started_at,
                updated_at=max([r.declared_at, *(u.at for u in ups), *([r.resolved_at] if r.resolved_at else [])]),
                updates=ups,
            )
        )
    return incidents


def load_one(session: Session, number: int) -> IncidentRec | None:
    row = session.get(IncidentRow, number)
    return _incident_recs(session, [row])[0] if row is not None else None


# --- the view ------------------------------------------------------------------------------


@dataclass
class ComponentView:
    component: Component
    state: ComponentState
    days: list[Day]
    uptime: str
    updated_at: datetime
    position: int


@dataclass
class GroupView:
    name: str | None
    components: list[ComponentView]

    @property
    def state(self) -> ComponentState:
        return max((c.state for c in self.components), key=lambda s: s.rank)


@dataclass
class HistoryDay:
    day: date
    incidents: list[IncidentRec]
    quiet_until: date | None = None
    """For a run of days without incidents: the oldest day of the run (``day`` is the newest)."""


@dataclass
class View:
    catalog: Catalog
    now: datetime
    indicator: Indicator
    description: str
    groups: list[GroupView]
    open_incidents: list[IncidentRec]
    recent_incidents: list[IncidentRec]
    history: list[HistoryDay]
    active_maintenance: list[MaintenanceRec]
    upcoming_maintenance: list[MaintenanceRec]
    past_maintenance: list[MaintenanceRec]
    impacts: list[Impact] = field(default_factory=list)
    windows: list[Maintenance] = field(default_factory=list)
    _states: dict[datetime, dict[str, ComponentState]] = field(default_factory=dict, repr=False, compare=False)
    _held: Held | None = field(default=None, repr=False, compare=False)

    def states_at(self, at: datetime) -> dict[str, ComponentState]:
        """Every component's state at an instant, from the recorded intervals (each instant
        worked out once per view: an update's instant is asked for again by the next one)."""
        if self._held is None:
            self._held = holds(self.catalog, self.impacts, self.windows)
        if at not in self._states:
            self._states[at] = states_held(self.catalog, self._held, at)
        return self._states[at]

    @property
    def components(self) -> list[ComponentView]:
        return [c for g in self.groups for c in g.components]

    def names(self, raw: list[str]) -> list[str]:
        """Display names of an incident's components (unknown names shown as given)."""
        by_id = self.catalog.by_id()
        out = []
        for name in raw:
            cid = self.catalog.resolve(name)
            out.append(by_id[cid].name if cid else name)
        return list(dict.fromkeys(out))


def _maintenance(m: MaintenanceRec) -> Maintenance:
    return Maintenance(id=m.id, components=tuple(m.components), start=m.starts_at, end=m.ends_at)


def build(snap: Snapshot, catalog: Catalog, now: datetime) -> View:
    windows = [_maintenance(m) for m in snap.maintenance]
    states = component_states(catalog, snap.impacts, windows, now)
    open_incidents = [i for i in snap.incidents if i.open]
    indicator = overall(states, [i.severity for i in open_incidents])

    per_component: dict[str, list[StateInterval]] = defaultdict(list)
    changes: dict[str, list[datetime]] = defaultdict(list)
    for imp in snap.impacts:
        cid = catalog.resolve(imp.component)
        if cid is None:
            continue
        per_component[cid].append(StateInterval(state=imp.state, start=imp.start, end=imp.end))
        changes[cid] += [t for t in (imp.start, imp.end) if t is not None and t <= now]
    for m in snap.maintenance:
        for cid in catalog.resolve_all(m.components):
            per_component[cid].append(StateInterval(ComponentState.UNDER_MAINTENANCE, m.starts_at, m.ends_at))
            changes[cid] += [t for t in (m.starts_at, m.ends_at) if t <= now]

    groups: list[GroupView] = []
    position = 0
    for name, members in catalog.groups():
        views = []
        for comp in members:
            position += 1
            ivs = per_component.get(comp.id, [])
            start = comp.start_date
            views.append(
                ComponentView(
                    component=comp,
                    state=states[comp.id],
                    days=daily(ivs, now, UPTIME_DAYS, start),
                    uptime=format_percent(window_uptime(ivs, now, UPTIME_DAYS, start)),
                    updated_at=max(changes.get(comp.id, []), default=_created(comp, now)),
                    position=position,
                )
            )
        groups.append(GroupView(name=name, components=views))

    today = now.astimezone(UTC).date()
    resolved = [i for i in snap.incidents if not i.open]
    by_day: dict[date, list[IncidentRec]] = defaultdict(list)
    for inc in snap.incidents:
        by_day[inc.started_at.astimezone(UTC).date()].append(inc)
    history: list[HistoryDay] = []
    for n in range(HISTORY_DAYS):
        d = today - timedelta(days=n)
        found = by_day.get(d, [])
        if not found and history and not history[-1].incidents:
            history[-1].quiet_until = d  # quiet days in a row read as one line
        else:
            history.append(HistoryDay(day=d, incidents=found))
    return View(
        catalog=catalog,
        now=now,
        indicator=indicator,
        description=describe(indicator),
        groups=groups,
        open_incidents=open_incidents,
        recent_incidents=(open_incidents + resolved)[:RECENT_INCIDENTS],
        history=history,
        active_maintenance=[m for m in snap.maintenance if m.starts_at <= now < m.ends_at],
        upcoming_maintenance=[m for m in snap.maintenance if m.starts_at > now],
        past_maintenance=[m for m in snap.maintenance if m.ends_at <= now],
        impacts=snap.impacts,
        windows=windows,
    )


def _created(comp: Component, now: datetime) -> datetime:
    if comp.start_date is not None:
        return datetime.combine(comp.start_date, datetime.min.time(), tzinfo=UTC)
    return now


# --- links: served under /status, or exported as files ------------------------------------


@dataclass(frozen=True)
class Links:
    home: str
    feed: str
    json: str
    """Prefix of the v2 JSON documents (``.../api/v2/``)."""
    incident: Callable[[int], str]
    subscribe: str | None
    """Where the subscription form posts; None hides the form."""
    tz_form: bool = True
    """Offer the time-zone form (needs a server to read ``?tz=``)."""
    report: str | None = None
    """Where the "report a problem" form posts; None hides it (an exported page has no server)."""


def served_links(prefix: str = "") -> Links:
    return Links(
        home=f"{prefix}/status",
        feed=f"{prefix}/status/history.atom",
        json=f"{prefix}/api/v2/",
        incident=lambda n: f"{prefix}/status/incidents/{n}",
        subscribe=f"{prefix}/status/subscribe",
        report=f"{prefix}/status/report",
    )


def exported_links(depth: int, subscribe: str | None) -> Links:
    up = "../" * depth
    return Links(
        home=f"{up}index.html",
        feed=f"{up}history.atom",
        json=f"{up}api/v2/",
        incident=lambda n: f"{up}incidents/{n}.html",
        subscribe=subscribe,
        tz_form=False,
    )


# --- times -------------------------------------------------------------------------------------


def parse_zone(name: str | None) -> ZoneInfo | None:
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


COMMON_ZONES = [
    "UTC", "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin", "Europe/Madrid",
    "Europe/Rome", "Europe/Amsterdam", "Europe/Stockholm", "Europe/Warsaw", "Europe/Athens", "Europe/Helsinki",
    "Europe/Istanbul", "Europe/Moscow", "Africa/Lagos", "Africa/Johannesburg", "Africa/Cairo", "Asia/Dubai",
    "Asia/Kolkata", "Asia/Singapore", "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Tokyo", "Asia/Seoul",
    "Australia/Perth", "Australia/Sydney", "Pacific/Auckland", "America/Sao_Paulo", "America/Argentina/Buenos_Aires",
    "America/New_York", "America/Toronto", "America/Chicago", "America/Denver", "America/Phoenix",
    "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu",
]


def _fmt(at: datetime, zone: ZoneInfo | None) -> dict[str, str]:
    utc = at.astimezone(UTC)
    out = {"iso": utc.isoformat().replace("+00:00", "Z"), "utc": utc.strftime("%d %b %Y, %H:%M UTC")}
    if zone is not None and zone.key != "UTC":
        local = at.astimezone(zone)
        same_day = local.date() == utc.date()
        out["local"] = local.strftime("%H:%M %Z" if same_day else "%d %b, %H:%M %Z")
    return out


# --- HTML ----------------------------------------------------------------------------------------


def _update_label(u: UpdateRec) -> str:
    return "Resolved" if u.status == "resolved" else u.shown.label


def _context(view: View, links: Links, zone: ZoneInfo | None) -> dict[str, Any]:
    return {
        "v": view,
        "page": view.catalog.page,
        "links": links,
        "zone": zone,
        "zones": COMMON_ZONES,
        "t": lambda at: _fmt(at, zone),
        "impact": lambda inc: incident_impact(inc.max_severity).value,
        "update_label": _update_label,
        "duration": _duration,
        "ComponentState": ComponentState,
    }


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    hours, mins = divmod(minutes, 60)
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def render_page(view: View, links: Links, zone: ZoneInfo | None = None) -> str:
    return _env.get_template("page.html").render(**_context(view, links, zone))


def render_incident(view: View, incident: IncidentRec, links: Links, zone: ZoneInfo | None = None) -> str:
    return _env.get_template("incident.html").render(inc=incident, **_context(view, links, zone))


def render_message(view: View, links: Links, title: str, body: str, form: dict[str, Any] | None = None) -> str:
    """A small page for the subscription flow (confirmations, errors)."""
    return _env.get_template("message.html").render(title=title, body=body, form=form, **_context(view, links, None))


# --- Statuspage v2 JSON -----------------------------------------------------------------------------


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if at else None


def _page(view: View, page_url: str) -> dict[str, Any]:
    changes = [c.updated_at for c in view.components] + [i.updated_at for i in view.recent_incidents]
    return {
        "id": view.catalog.page.id,
        "name": view.catalog.page.name,
        "url": page_url,
        "time_zone": "Etc/UTC",
        "updated_at": _iso(max(changes, default=view.now)),
    }


def _group_id(name: str) -> str:
    return "group-" + "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")


def _components_json(view: View) -> list[dict[str, Any]]:
    page_id = view.catalog.page.id
    out: list[dict[str, Any]] = []
    position = 0
    for group in view.groups:
        gid = _group_id(group.name) if group.name else None
        if group.name:
            position += 1
            out.append({
                "id": gid, "name": group.name, "status": group.state.value,
                "created_at": _iso(min(_created(c.component, view.now) for c in group.components)),
                "updated_at": _iso(max(c.updated_at for c in group.components)),
                "position": position, "description": None, "showcase": False, "start_date": None,
                "group_id": None, "page_id": page_id, "group": True, "only_show_if_degraded": False,
                "components": [c.component.id for c in group.components],
            })
        for c in group.components:
            position += 1
            out.append({
                "id": c.component.id, "name": c.component.name, "status": c.state.value,
                "created_at": _iso(_created(c.component, view.now)), "updated_at": _iso(c.updated_at),
                "position": position, "description": c.component.description or None, "showcase": True,
                "start_date": c.component.start_date.isoformat() if c.component.start_date else None,
                "group_id": gid, "page_id": page_id, "group": False, "only_show_if_degraded": False,
            })
    return out


def _incident_status(inc: IncidentRec) -> str:
    return inc.phase.value if inc.open else "resolved"


def _incident_json(view: View, inc: IncidentRec, page_url: str, components: dict[str, dict[str, Any]]) -> dict[str, Any]:
    page_id = view.catalog.page.id
    ids = view.catalog.resolve_all(inc.components)
    affected = [components[cid] for cid in ids if cid in components]
    # Each update carries the change of its components since the update before it (the first:
    # since just before the incident began), read from the recorded state intervals, so a
    # reader sees operational -> partial outage on the first and back on the resolution.
    updates = []
    before = view.states_at(inc.started_at - timedelta(microseconds=1))
    for u in reversed(inc.updates):
        after = view.states_at(u.at)
        updates.append({
            "id": f"{inc.number}-{u.seq}", "status": u.status, "body": u.message, "incident_id": str(inc.number),
            "created_at": _iso(u.at), "updated_at": _iso(u.at), "display_at": _iso(u.at),
            "affected_components": [
                {"code": cid, "name": components[cid]["name"], "old_status": before[cid].value,
                 "new_status": after[cid].value}
                for cid in ids if cid in components and cid in after
            ],
            "deliver_notifications": True, "custom_tweet": None, "tweet_id": None,
        })
        before = after
    updates.reverse()
    return {
        "id": str(inc.number),
        "name": inc.title,
        "status": _incident_status(inc),
        "created_at": _iso(inc.declared_at),
        "updated_at": _iso(inc.updated_at),
        "monitoring_at": _iso(inc.monitoring_at),
        "resolved_at": _iso(inc.resolved_at),
        "impact": incident_impact(inc.max_severity).value,
        "shortlink": f"{page_url}/incidents/{inc.number}",
        "started_at": _iso(inc.started_at),
        "page_id": page_id,
        "incident_updates": updates,
        "components": affected,
    }


def _maintenance_json(view: View, m: MaintenanceRec, page_url: str, components: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if view.now < m.starts_at:
        status = "scheduled"
    elif view.now < m.ends_at:
        status = "in_progress"
    else:
        status = "completed"
    body = m.description or m.title
    return {
        "id": f"maintenance-{m.id}",
        "name": m.title,
        "status": status,
        "created_at": _iso(m.created_at),
        "updated_at": _iso(m.created_at),
        "monitoring_at": None,
        "resolved_at": _iso(m.ends_at) if status == "completed" else None,
        "impact": "maintenance",
        "shortlink": f"{page_url}#maintenance-{m.id}",
        "started_at": _iso(m.starts_at),
        "page_id": view.catalog.page.id,
        "incident_updates": [{
            "id": f"maintenance-{m.id}-1", "status": status, "body": body,
            "incident_id": f"maintenance-{m.id}", "created_at": _iso(m.created_at), "updated_at": _iso(m.created_at),
            "display_at": _iso(m.created_at), "affected_components": [], "deliver_notifications": False,
            "custom_tweet": None, "tweet_id": None,
        }],
        "components": [components[c] for c in view.catalog.resolve_all(m.components) if c in components],
        "scheduled_for": _iso(m.starts_at),
        "scheduled_until": _iso(m.ends_at),
    }


V2_NAMES = (
    "status.json", "summary.json", "components.json", "incidents.json", "incidents/unresolved.json",
    "scheduled-maintenances.json", "scheduled-maintenances/upcoming.json", "scheduled-maintenances/active.json",
)


def v2_document(view: View, page_url: str, name: str) -> dict[str, Any]:
    """One JSON document by its path under ``/api/v2/``, building only what it holds: a
    reader polling status.json should not pay for every incident's update history."""
    page = _page(view, page_url)
    status = {"indicator": view.indicator.value, "description": view.description}
    if name == "status.json":
        return {"page": page, "status": status}
    comps = _components_json(view)
    if name == "components.json":
        return {"page": page, "components": comps}
    by_id = {c["id"]: c for c in comps if not c["group"]}

    def incidents(recs: list[IncidentRec]) -> list[dict[str, Any]]:
        return [_incident_json(view, i, page_url, by_id) for i in recs]

    def maintenance(recs: list[MaintenanceRec]) -> list[dict[str, Any]]:
        return [_maintenance_json(view, m, page_url, by_id) for m in recs]

    if name == "incidents.json":
        return {"page": page, "incidents": incidents(view.recent_incidents)}
    if name == "incidents/unresolved.json":
        return {"page": page, "incidents": incidents(view.open_incidents)}
    if name == "scheduled-maintenances.json":
        return {"page": page, "scheduled_maintenances": maintenance(
            view.active_maintenance + view.upcoming_maintenance + view.past_maintenance)}
    if name == "scheduled-maintenances/upcoming.json":
        return {"page": page, "scheduled_maintenances": maintenance(view.upcoming_maintenance)}
    if name == "scheduled-maintenances/active.json":
        return {"page": page, "scheduled_maintenances": maintenance(view.active_maintenance)}
    if name == "summary.json":
        return {
            "page": page,
            "components": comps,
            "incidents": incidents(view.open_incidents),
            "scheduled_maintenances": maintenance(view.active_maintenance + view.upcoming_maintenance),
            "status": status,
        }
    raise KeyError(name)


def v2_documents(view: View, page_url: str) -> dict[str, dict[str, Any]]:
    """Every JSON document by its path under ``/api/v2/`` (the static export writes them all)."""
    return {name: v2_document(view, page_url, name) for name in V2_NAMES}


# --- Atom ----------------------------------------------------------------------------------------


def render_atom(view: View, page_url: str) -> str:
    """One entry per recent incident (newest first), its updates in the content."""
    updated = _iso(max([i.updated_at for i in view.recent_incidents], default=view.now))
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">',
        f"<id>{escape(page_url)}/history</id>",
        f"<title>{escape(view.catalog.page.name)}: incident history</title>",
        f'<link rel="alternate" type="text/html" href="{escape(page_url)}"/>',
        f'<link rel="self" type="application/atom+xml" href="{escape(page_url)}/history.atom"/>',
        f"<updated>{updated}</updated>",
        f"<author><name>{escape(view.catalog.page.name)}</name></author>",
    ]
    for inc in view.recent_incidents:
        url = f"{page_url}/incidents/{inc.number}"
        lines = "".join(
            f"<p><small>{escape(_fmt(u.at, None)['utc'])}</small> - "
            f"<strong>{escape(_update_label(u))}</strong>: {escape(u.message)}</p>"
            for u in inc.updates
        ) or "<p>We are investigating.</p>"
        state = "Resolved" if not inc.open else "Ongoing"
        parts += [
            "<entry>",
            f"<id>{escape(url)}</id>",
            f"<published>{_iso(inc.declared_at)}</published>",
            f"<updated>{_iso(inc.updated_at)}</updated>",
            f'<link rel="alternate" type="text/html" href="{escape(url)}"/>',
            f"<title>{escape(state)}: {escape(inc.title)}</title>",
            f'<content type="html">{escape(lines)}</content>',
            "</entry>",
        ]
    parts.append("</feed>")
    return "\n".join(parts) + "\n"
