"""Status-page components: the catalog (configuration) and the rules for their state.

The catalog is YAML (``warroom/policies/statuspage.yaml`` is the documented
default; ``WARROOM_COMPONENTS`` points at your own). Incidents name the
components they affect with free text (an alert's ``component`` label, the
API's ``components`` list); :meth:`Catalog.resolve` maps those names onto the
catalog by id, display name or alias.

A component's state is never stored as such: it is computed at an instant from
the impacts of the incidents that are still open and the maintenance windows
in force. So resolving an incident restores each of its components unless
another open incident still holds it, and nothing can leave a component stuck
in an outage after the fact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from warroom.models.policy import format_errors as _format_errors
from warroom.models.severity import Severity

DEFAULT_STATUSPAGE_PATH = Path(__file__).resolve().parent.parent / "policies" / "statuspage.yaml"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ComponentState(StrEnum):
    """The five states, spelled as Atlassian Statuspage spells them."""

    OPERATIONAL = "operational"
    UNDER_MAINTENANCE = "under_maintenance"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"

    @property
    def rank(self) -> int:
        """How bad it is: an incident's impact outranks planned maintenance."""
        return _RANK[self]

    @property
    def label(self) -> str:
        return _LABEL[self]

    @property
    def is_outage(self) -> bool:
        """Counts against uptime (see ``warroom.models.uptime``)."""
        return self in (ComponentState.PARTIAL_OUTAGE, ComponentState.MAJOR_OUTAGE)


_RANK = {
    ComponentState.OPERATIONAL: 0,
    ComponentState.UNDER_MAINTENANCE: 1,
    ComponentState.DEGRADED_PERFORMANCE: 2,
    ComponentState.PARTIAL_OUTAGE: 3,
    ComponentState.MAJOR_OUTAGE: 4,
}
_LABEL = {
    ComponentState.OPERATIONAL: "Operational",
    ComponentState.UNDER_MAINTENANCE: "Under maintenance",
    ComponentState.DEGRADED_PERFORMANCE: "Degraded performance",
    ComponentState.PARTIAL_OUTAGE: "Partial outage",
    ComponentState.MAJOR_OUTAGE: "Major outage",
}

# SEV-4 is "no effect on customers" in the seed's criteria: it is shown as an
# incident but leaves its components operational unless someone says otherwise.
_BY_SEVERITY = {
    Severity.SEV1: ComponentState.MAJOR_OUTAGE,
    Severity.SEV2: ComponentState.PARTIAL_OUTAGE,
    Severity.SEV3: ComponentState.DEGRADED_PERFORMANCE,
    Severity.SEV4: ComponentState.OPERATIONAL,
}


def state_for_severity(severity: Severity) -> ComponentState:
    """The state an incident of ``severity`` puts its components in, unless edited."""
    return _BY_SEVERITY[severity]


def worst(states: Iterable[ComponentState]) -> ComponentState:
    return max(states, key=lambda s: s.rank, default=ComponentState.OPERATIONAL)


# --- the catalog ----------------------------------------------------------------------


class CatalogError(Exception):
    """A status-page configuration that cannot be used; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(_Strict):
    id: str
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    group: str | None = Field(default=None, min_length=1, max_length=100)
    aliases: list[str] = Field(default_factory=list)
    """Other names incidents and alert labels use for this component."""
    start_date: date | None = None
    """Days before this are shown as "no data" and left out of uptime."""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"'{value}' is not a component id: use lower-case letters, digits and '-'")
        return value


class PageInfo(_Strict):
    name: str = Field(default="Service status", min_length=1, max_length=100)
    url: str | None = None
    """Where the public page lives (links in messages, the feed); defaults to ``WARROOM_PUBLIC_BASE_URL``."""
    id: str = Field(default="warroom", min_length=1, max_length=64)


class Catalog(_Strict):
    page: PageInfo = Field(default_factory=PageInfo)
    components: list[Component] = Field(min_length=1)
    _names: dict[str, str] = PrivateAttr(default_factory=dict)
    """Every name a component answers to (its id, name and aliases, normalised) -> its id."""

    @model_validator(mode="after")
    def _unique(self) -> "Catalog":
        ids: set[str] = set()
        seen: dict[str, str] = {}
        for i, comp in enumerate(self.components):
            if comp.id in ids:
                raise ValueError(f"components.{i}: duplicate id '{comp.id}'")
            ids.add(comp.id)
            names = {_key(n): n for n in (comp.id, comp.name, *comp.aliases)}
            for key, name in names.items():
                if key in seen:
                    raise ValueError(f"components.{i}: the name '{name}' is already used by '{seen[key]}'")
                seen[key] = comp.id
        self._names = seen
        return self

    def by_id(self) -> dict[str, Component]:
        return {c.id: c for c in self.components}

    def resolve(self, name: str) -> str | None:
        """The catalog id an incident's component name refers to, or None."""
        return self._names.get(_key(name))

    def resolve_all(self, names: Iterable[str]) -> list[str]:
        return list(dict.fromkeys(i for i in (self.resolve(n) for n in names) if i is not None))

    def groups(self) -> list[tuple[str | None, list[Component]]]:
        """Components in configuration order, grouped; a group sits where its first member is."""
        out: list[tuple[str | None, list[Component]]] = []
        index: dict[str, int] = {}
        for comp in self.components:
            if comp.group is None:
                out.append((None, [comp]))
            elif comp.group in index:
                out[index[comp.group]][1].append(comp)
            else:
                index[comp.group] = len(out)
                out.append((comp.group, [comp]))
        return out


def _key(name: str) -> str:
    return re.sub(r"[\s_-]+", "", name.strip().lower())


def parse_catalog(data: Any, source: str = "status page configuration") -> Catalog:
    if not isinstance(data, dict):
        raise CatalogError(f"{source}: expected a mapping with a 'components' list")
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(f"{source}: {_format_errors(exc)}") from None


def load_catalog(path: str | Path) -> Catalog:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the status page configuration ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML ({exc})") from None
    return parse_catalog(data, str(path))


# --- state at an instant ---------------------------------------------------------------


@dataclass(frozen=True)
class Impact:
    """One incident holding one component in one state from ``start`` (until ``end``)."""

    incident: int
    component: str
    state: ComponentState
    start: datetime
    end: datetime | None = None

    def active_at(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass(frozen=True)
class Maintenance:
    id: int
    components: tuple[str, ...]
    start: datetime
    end: datetime

    def active_at(self, at: datetime) -> bool:
        return self.start <= at < self.end


Held = list[tuple[str, ComponentState, "Impact | Maintenance"]]
"""Who holds which catalog component in which state, and when (an impact or a window)."""


def holds(catalog: Catalog, impacts: Iterable[Impact], maintenance: Iterable[Maintenance]) -> Held:
    """Impacts and maintenance windows resolved to catalog ids, once, for asking at many instants.

    Names the catalog does not know are left out here (the incident still lists them)."""
    out: Held = []
    for imp in impacts:
        cid = catalog.resolve(imp.component)
        if cid is not None:
            out.append((cid, imp.state, imp))
    for win in maintenance:
        out += [(cid, ComponentState.UNDER_MAINTENANCE, win) for cid in catalog.resolve_all(win.components)]
    return out


def states_held(catalog: Catalog, held: Held, at: datetime) -> dict[str, ComponentState]:
    """Each catalog component's state at ``at``: the worst state held then, else operational
    (an incident's impact outranks maintenance: ``worst`` puts maintenance below any outage)."""
    states: dict[str, list[ComponentState]] = {c.id: [] for c in catalog.components}
    for cid, state, interval in held:
        if interval.active_at(at):
            states[cid].append(state)
    return {cid: worst(found) for cid, found in states.items()}


def component_states(
    catalog: Catalog, impacts: Iterable[Impact], maintenance: Iterable[Maintenance], at: datetime
) -> dict[str, ComponentState]:
    """Each catalog component's state at ``at``: the worst impact of an incident that
    holds it then, else under maintenance inside a window, else operational."""
    return states_held(catalog, holds(catalog, impacts, maintenance), at)


def components_in_maintenance(catalog: Catalog, maintenance: Iterable[Maintenance], at: datetime) -> set[str]:
    out: set[str] = set()
    for win in maintenance:
        if win.active_at(at):
            out.update(cid for cid in catalog.resolve_all(win.components))
    return out


# --- the page's overall indicator (Statuspage v2: status.indicator) ----------------------


class Indicator(StrEnum):
    NONE = "none"
    MAINTENANCE = "maintenance"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


_INDICATOR_RANK = {Indicator.NONE: 0, Indicator.MAINTENANCE: 1, Indicator.MINOR: 2, Indicator.MAJOR: 3, Indicator.CRITICAL: 4}
_FROM_STATE = {
    ComponentState.OPERATIONAL: Indicator.NONE,
    ComponentState.UNDER_MAINTENANCE: Indicator.MAINTENANCE,
    ComponentState.DEGRADED_PERFORMANCE: Indicator.MINOR,
    ComponentState.PARTIAL_OUTAGE: Indicator.MAJOR,
    ComponentState.MAJOR_OUTAGE: Indicator.CRITICAL,
}
_IMPACT = {Severity.SEV1: Indicator.CRITICAL, Severity.SEV2: Indicator.MAJOR, Severity.SEV3: Indicator.MINOR,
           Severity.SEV4: Indicator.NONE}
_DESCRIPTION = {
    Indicator.NONE: "All systems operational",
    Indicator.MAINTENANCE: "Planned maintenance in progress",
    Indicator.MINOR: "Some services are degraded",
    Indicator.MAJOR: "Partial outage",
    Indicator.CRITICAL: "Major outage",
}


def incident_impact(severity: Severity) -> Indicator:
    """An incident's ``impact`` in Statuspage terms: SEV-1 critical .. SEV-4 none."""
    return _IMPACT[severity]


def overall(states: Mapping[str, ComponentState], open_incident_severities: Iterable[Severity] = ()) -> Indicator:
    """The page's headline: the worst of every component's state and every open
    incident's impact (an incident on no catalog component still counts)."""
    candidates = [_FROM_STATE[s] for s in states.values()]
    candidates += [_IMPACT[s] for s in open_incident_severities]
    return max(candidates, key=lambda i: _INDICATOR_RANK[i], default=Indicator.NONE)


def describe(indicator: Indicator) -> str:
    return _DESCRIPTION[indicator]


# --- an incident's impacts (kept in the incident workflow's state) ------------------------


class ComponentImpact(BaseModel):
    """One interval of one incident holding one component in one state.

    Travels in the incident's workflow state: new fields need defaults.
    """

    component: str
    state: ComponentState
    since: datetime
    until: datetime | None = None
    set_by: str | None = None
    """Who set this state by hand; None while it follows the incident's severity."""


class ComponentStateInput(BaseModel):
    """The command that edits what an open incident does to one component."""

    component: str
    state: ComponentState
    by: str = "api"


def _current(impacts: list[ComponentImpact], component: str) -> ComponentImpact | None:
    for imp in reversed(impacts):
        if imp.component == component and imp.until is None:
            return imp
    return None


def _switch(
    impacts: list[ComponentImpact], component: str, state: ComponentState, now: datetime, set_by: str | None
) -> list[ComponentImpact]:
    out = [imp.model_copy() for imp in impacts]
    current = _current(out, component)
    if current is not None:
        if current.state == state and current.set_by == set_by:
            return out
        if current.state == state:
            current.set_by = set_by
            return out
        current.until = now
    out.append(ComponentImpact(component=component, state=state, since=now, set_by=set_by))
    return out


def impacts_at_declaration(components: Iterable[str], severity: Severity, now: datetime) -> list[ComponentImpact]:
    """Every component the incident names, in the state its severity implies.

    SEV-4 components are held *operational*: nothing shows, but a later raise of
    the severity knows which components follow it.
    """
    state = state_for_severity(severity)
    return [ComponentImpact(component=c, state=state, since=now) for c in dict.fromkeys(components)]


def impacts_after_severity_change(
    impacts: list[ComponentImpact], severity: Severity, now: datetime
) -> list[ComponentImpact]:
    """Components that follow the severity move with it; hand-set ones stay put."""
    out = impacts
    for comp in dict.fromkeys(i.component for i in impacts if i.until is None):
        current = _current(out, comp)
        if current is not None and current.set_by is None:
            out = _switch(out, comp, state_for_severity(severity), now, None)
    return out


def impacts_after_edit(impacts: list[ComponentImpact], cmd: ComponentStateInput, now: datetime) -> list[ComponentImpact]:
    """An explicit state for one component (also one the incident did not name yet)."""
    return _switch(impacts, cmd.component, cmd.state, now, cmd.by)


def impacts_at_resolution(impacts: list[ComponentImpact], now: datetime) -> list[ComponentImpact]:
    """Resolution releases every component the incident held."""
    out = [imp.model_copy() for imp in impacts]
    for imp in out:
        if imp.until is None:
            imp.until = now
    return out


def current_impacts(impacts: list[ComponentImpact]) -> dict[str, ComponentState]:
    return {i.component: i.state for i in impacts if i.until is None}
