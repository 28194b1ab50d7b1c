"""The status page's configuration, built once in each composition root."""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from warroom.models.components import Catalog, load_catalog
from warroom.models.tables import instance_secret
from warroom.settings import Settings

log = logging.getLogger("warroom.statuspage")

STATUSPAGE_SECRET_NAME = "statuspage"
"""Its row in ``instance_secrets``."""
LEGACY_SECRET_FILE = "statuspage.secret"
"""Where each process kept the secret before it moved to the database (imported once)."""
MAX_SECRET_LENGTH = 200


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


def load_secret(settings: Settings, engine: Engine, now: datetime | None = None) -> str:
    """``WARROOM_STATUSPAGE_SECRET``, else the installation's own secret, kept in the database.

    The API and every worker must sign and check links with one secret, and in a
    cluster the database is all they share (each container has its own data
    directory). The first process to start stores a random secret; the others,
    even when starting at the same moment, read that one.

    An install from before kept the secret in ``<data dir>/statuspage.secret``: if
    that file exists when nothing is stored yet, its value is stored instead, so
    links already sent stay valid. The file is only read, never removed (another
    process of the same install may be about to read it); once the database has a
    secret the file no longer matters.
    """
    if settings.statuspage_secret:
        return settings.statuspage_secret
    legacy_path = Path(settings.data_dir) / LEGACY_SECRET_FILE
    legacy = _read_legacy(legacy_path)
    value, stored = instance_secret(
        engine, STATUSPAGE_SECRET_NAME, legacy or secrets.token_urlsafe(32), now or datetime.now(UTC)
    )
    if stored:
        log.info("status page link secret %s and stored in the database",
                 f"imported from {legacy_path}" if legacy else "generated")
    elif legacy and not hmac.compare_digest(legacy, value):
        log.warning("%s holds another status page link secret than the database; the database's is used "
                    "(links signed with the file's are refused). Delete the file.", legacy_path)
    return value


def _read_legacy(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        log.warning("cannot read %s (%s); not importing it", path, type(err).__name__)
        return None
    if not text or len(text) > MAX_SECRET_LENGTH:
        return None
    return text


def load_config(settings: Settings, engine: Engine, catalog: Catalog | None = None) -> StatusPageConfig:
    """Raises ``CatalogError`` naming the bad key of a malformed components file.

    ``catalog``: one already loaded (processes check the components file before
    they wait for the database)."""
    return StatusPageConfig(
        catalog=catalog if catalog is not None else load_catalog(settings.components),
        secret=load_secret(settings, engine),
        public_url=settings.site_url,
    )
