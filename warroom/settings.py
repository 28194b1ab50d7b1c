"""Settings, read from the environment (prefix ``WARROOM_``) by each composition root.

Nothing imports a module-level settings object: ``worker.main``, the API's
``create_app(settings)`` and the launcher build one and pass it down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from warroom.models.ids import DEFAULT_TASK_QUEUE
from warroom.models.policy import DEFAULT_POLICY_PATH


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WARROOM_", extra="ignore")

    data_dir: Path = Path("./var")
    policy: Path = DEFAULT_POLICY_PATH
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    temporal_port: int = Field(default=7233, ge=1, le=65535)
    temporal_address: str | None = None
    """host:port of the Temporal frontend; defaults to 127.0.0.1:<temporal_port>."""
    temporal_namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    database_url: str | None = None
    """SQLAlchemy URL of the read model; defaults to SQLite under the data directory."""
    temporal_ui_url: str | None = None
    log_level: str = "INFO"
    log_format: Literal["auto", "text", "json"] = "auto"
    """``json``: one JSON object per line; ``text``: for people; ``auto``: text on a terminal, else JSON."""
    auto_migrate: bool = True
    """Bring the read model to the newest schema at start-up (safe with several processes).
    When false, start-up refuses a database that ``warroom db upgrade`` has not migrated."""
    startup_timeout_seconds: float = Field(default=120.0, gt=0)
    """How long a process waits for the database and Temporal at start-up before giving up."""
    health_file: Path | None = None
    """The worker touches this file while it is connected and polling (for container health checks)."""
    api_url: str | None = None
    """Base URL of the API, for the CLI; defaults to http://<http_host>:<http_port>."""
    api_token: SecretStr | None = None
    """Bearer token the CLI sends with every request."""
    command_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long the API waits for the workflow to answer a command before a 503."""

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def temporal_ui_port(self) -> int:
        return self.temporal_port + 1000

    @property
    def read_model_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'warroom.db').resolve()}"

    @property
    def api_base_url(self) -> str:
        if self.api_url:
            return self.api_url.rstrip("/")
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::") else self.http_host
        return f"http://{host}:{self.http_port}"

    @property
    def temporal_db_file(self) -> Path:
        return self.data_dir / "temporal.db"
