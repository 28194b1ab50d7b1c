"""Settings, read from the environment (prefix ``WARROOM_``) by each composition root.

Nothing imports a module-level settings object: ``worker.main``, the API's
``create_app(settings)`` and the launcher build one and pass it down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from warroom.models.chat import SLACK, WEBHOOKS, WebhookEndpoint
from warroom.models.components import DEFAULT_STATUSPAGE_PATH
from warroom.models.detection import DEFAULT_DETECTION_PATH
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
    max_request_bytes: int = Field(default=1024**2, ge=64 * 1024)
    """The largest request body the API reads (bytes); larger ones are refused with 413 before
    anything reads them. Postmortems may be up to 4 MiB, alert webhooks ``max_alert_request_bytes``."""
    max_alert_request_bytes: int = Field(default=10 * 1024**2, ge=64 * 1024)
    """The largest alert webhook delivery (Alertmanager, Grafana, generic) the API reads."""
    command_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long the API waits for the workflow to answer a command before a 503."""
    query_timeout_seconds: float = Field(default=1.5, gt=0, le=30)
    """How long an incident read (API and web page) waits for the workflow's live state
    before answering from the read model instead (a stopped or busy worker)."""
    runbooks_dir: Path | None = None
    """Directory of runbook YAML files; defaults to the runbooks shipped with warroom."""
    runbook_endpoints: dict[str, str] = Field(default_factory=lambda: {"platform": "http://127.0.0.1:8100"})
    """Base URLs that runbook steps name (JSON object, e.g. {"platform": "https://ops.example.com"})."""
    runbook_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    """Secrets that runbook steps reference as {{ secret.NAME }} (JSON object); never logged."""
    components: Path = DEFAULT_STATUSPAGE_PATH
    """The status page's YAML: page name and components (WARROOM_COMPONENTS)."""
    statuspage_secret: str | None = None
    """Signs subscription links; unset: a random one that the first process stores in the
    read model's database (``instance_secrets``), so the API and every worker share it."""
    detection: Path = DEFAULT_DETECTION_PATH
    """Alert rules, grouping window, heartbeats and customer-report thresholds (WARROOM_DETECTION)."""

    # --- paging providers (unset: pages go to the console) ---------------------------
    public_base_url: str | None = None
    """How people and Twilio reach this API from outside, e.g. https://warroom.example.com:8443
    (behind a proxy: the proxy's URL). Twilio webhook signatures are checked against it,
    and links in subscriber messages start with it."""
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    """warroom's own number: pages come from it, and nothing is ever sent to it."""
    twilio_api_base: str | None = None
    """Another base URL for the Twilio REST API (a local fake, a regional edge)."""
    sendgrid_api_key: SecretStr | None = None
    sendgrid_from_email: str | None = None
    sendgrid_api_base: str | None = None
    """Another base URL for the SendGrid v3 API (a local fake)."""
    provider_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    sms_reply_limit: int = Field(default=5, ge=0)
    """At most this many automatic SMS answers to one number per ``sms_reply_window_seconds``,
    so warroom and another machine's auto-responder cannot keep texting each other."""
    sms_reply_window_seconds: float = Field(default=600, gt=0)

    # --- access control ------------------------------------------------------------------
    session_hours: float = Field(default=12, gt=0, le=24 * 30)
    """How long a web sign-in lasts."""
    token_days: int = Field(default=90, ge=1, le=730)
    """Lifetime of a new API token when its creator does not give one."""
    login_rate_burst: int = Field(default=10, ge=1)
    login_rate_per_minute: float = Field(default=6, gt=0)
    """Sign-in attempts per client address: ``burst`` at once, then this many a minute."""
    webhook_rate_burst: int = Field(default=120, ge=1)
    webhook_rate_per_minute: float = Field(default=600, gt=0)
    """Alert webhook deliveries per client address: ``burst`` at once, then this many a minute."""
    report_rate_burst: int = Field(default=3, ge=1)
    report_rate_per_minute: float = Field(default=0.5, gt=0)
    """Customer problem reports per client address: ``burst`` at once, then this many a minute."""
    subscribe_rate_burst: int = Field(default=5, ge=1)
    subscribe_rate_per_minute: float = Field(default=1, gt=0)
    """Status-page subscription requests per client address: ``burst`` at once, then this many a
    minute (each may send an SMS or email that costs money and lands on a stranger's phone)."""
    confirmation_rate_burst: int = Field(default=3, ge=1)
    confirmation_rate_per_hour: float = Field(default=2, gt=0)
    """Subscription confirmation messages to one email address or number, from any client:
    ``burst`` at once, then this many an hour."""

    # --- the incident channel (Slack) and outgoing webhooks: off unless configured ----------------
    slack_bot_token: SecretStr | None = None
    """The Slack app's bot token (xoxb-...): scopes channels:manage, channels:read, chat:write,
    pins:write, channels:history, users:read (groups:* too with ``slack_private_channels``)."""
    slack_signing_secret: SecretStr | None = None
    """Checks that slash commands, buttons and events really come from Slack."""
    slack_api_base: str | None = None
    """Another base URL for the Slack Web API (a local fake); default https://slack.com/api/."""
    slack_users: dict[str, str] = Field(default_factory=dict)
    """Person id -> Slack member id (JSON object); the policy's ``slack:`` field of a person also works."""
    slack_channel_prefix: str = Field(default="inc", pattern=r"^[a-z0-9][a-z0-9_-]{0,20}$")
    slack_private_channels: bool = False
    slack_note_reaction: str = Field(default="pushpin", pattern=r"^[a-z0-9_+-]{1,50}$")
    """A message given this reaction in an incident channel is copied to the incident's timeline."""
    webhooks: list[WebhookEndpoint] = Field(default_factory=list)
    """Outgoing webhooks (JSON list of {"name", "url", "secret", "kinds"}): every timeline event, signed."""
    chat_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("public_base_url", "twilio_api_base", "sendgrid_api_base", "slack_api_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("give a full URL starting with http:// or https://")
        return value

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from_number)

    @property
    def sendgrid_configured(self) -> bool:
        return bool(self.sendgrid_api_key and self.sendgrid_from_email)

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @property
    def relay_targets(self) -> list[str]:
        """Where a new incident is mirrored: its Slack channel, the outgoing webhooks."""
        return ([SLACK] if self.slack_configured else []) + ([WEBHOOKS] if self.webhooks else [])

    @property
    def slack_api_url(self) -> str:
        return (self.slack_api_base or "https://slack.com/api").rstrip("/") + "/"

    @property
    def temporal_ui_base(self) -> str:
        return (self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}").rstrip("/")

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def site_url(self) -> str:
        """The public base URL, or the local address when none is configured (for links only:
        Twilio webhooks refuse to run without an explicit ``public_base_url``)."""
        return (self.public_base_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

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
