"""The status page's configuration, built once in each composition root."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from warroom.models.components import Catalog, load_catalog
from warroom.settings import Settings

SECRET_FILE = "statuspage.secret"


@dataclass(frozen=True)
class StatusPageConfig:
    catalog: Catalog
    secret: str
    """Signs confirmation and unsubscribe links; never logged, never in a workflow history."""
    public_url: str
    """Base URL of the API (links in messages point here)."""

    @property
    def page_url(self) -> str:
        return (self.catalog.page.url or f"{self.public_url}/status").rstrip("/")

    def incident_url(self, number: int) -> str:
        return f"{self.page_url}/incidents/{number}"


def load_secret(settings: Settings) -> str:
    """``WARROOM_STATUSPAGE_SECRET``, else a random secret kept in the data directory so
    that the API and the worker (and a restart) agree on it."""
    if settings.statuspage_secret:
        return settings.statuspage_secret
    path = Path(settings.data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    text = ""
    for _ in range(40):  # another process may have created the file and not written it yet
        text = path.read_text().strip()
        if text:
            break
        time.sleep(0.05)
    if not text:
        raise RuntimeError(f"{path} is empty; delete it or set WARROOM_STATUSPAGE_SECRET")
    return text


def load_config(settings: Settings) -> StatusPageConfig:
    """Raises ``CatalogError`` naming the bad key of a malformed components file."""
    return StatusPageConfig(
        catalog=load_catalog(settings.components),
        secret=load_secret(settings),
        public_url=settings.site_url,
    )
