"""Static export: the status page and its JSON as plain files.

Serve the directory from any static host (object storage, a CDN, a small
VM elsewhere) so customers can still read the status page when the platform
that runs warroom is the thing that is down::

    warroom statuspage export ./public            # once
    warroom statuspage export ./public --watch    # keep it fresh

(``python -m warroom.statuspage export`` does the same without the CLI's typer layer.)

Layout: ``index.html``, ``incidents/<n>.html``, ``history.atom`` and
``api/v2/<document>.json`` (the same documents as the live ``/api/v2/``).
Every file is written to a temporary name and renamed, so a reader never sees
half a file.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from warroom.models.components import Catalog, load_catalog
from warroom.models.tables import make_engine
from warroom.settings import Settings
from warroom.statuspage import render

log = logging.getLogger("warroom.statuspage.export")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ExportResult:
    files: list[Path]
    open_incidents: int


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def export_once(engine: Engine, catalog: Catalog, public_url: str, out_dir: Path, now: datetime) -> ExportResult:
    """Render every document from one consistent read of the read model."""
    with Session(engine) as session:
        snap = render.load(session, now)
    view = render.build(snap, catalog, now)
    page_url = (catalog.page.url or f"{public_url.rstrip('/')}/status").rstrip("/")
    subscribe = f"{public_url.rstrip('/')}/status/subscribe"
    out_dir = Path(out_dir)
    files = [_write(out_dir / "index.html", render.render_page(view, render.exported_links(0, subscribe)))]
    for inc in view.recent_incidents:
        html = render.render_incident(view, inc, render.exported_links(1, subscribe))
        files.append(_write(out_dir / "incidents" / f"{inc.number}.html", html))
    files.append(_write(out_dir / "history.atom", render.render_atom(view, page_url)))
    for name, doc in render.v2_documents(view, page_url).items():
        files.append(_write(out_dir / "api" / "v2" / name, json.dumps(doc, indent=1, ensure_ascii=False) + "\n"))
    return ExportResult(files=files, open_incidents=len(view.open_incidents))


def export(
    settings: Settings,
    out_dir: Path,
    *,
    watch: bool = False,
    interval: float = 30.0,
    idle_interval: float = 300.0,
    clock: Clock = utc_now,
    engine: Engine | None = None,
    rounds: int | None = None,
) -> ExportResult:
    """The work behind ``warroom statuspage export DIR`` (and ``python -m warroom.statuspage export``).

    With ``watch``, export again every ``interval`` seconds while any incident is
    open and every ``idle_interval`` seconds otherwise, until interrupted (or
    after ``rounds`` exports, for tests).
    """
    catalog = load_catalog(settings.components)
    own = engine is None
    eng = engine or make_engine(settings.read_model_url)
    try:
        done = 0
        while True:
            result = export_once(eng, catalog, settings.site_url, out_dir, clock())
            done += 1
            log.info("exported %d files to %s (%d open incidents)", len(result.files), out_dir, result.open_incidents)
            if not watch or (rounds is not None and done >= rounds):
                return result
            time.sleep(interval if result.open_incidents else idle_interval)
    finally:
        if own:
            eng.dispose()
