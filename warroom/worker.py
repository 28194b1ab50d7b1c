"""The worker process: every workflow and activity, wired from settings."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from warroom.activities.incident import IncidentActivities, WorkflowPageGuard
from warroom.activities.notify import Channel, NotifierRegistry
from warroom.activities.oncall import OnCallActivities
from warroom.activities.runbook import HEARTBEAT_THROTTLE, RunbookActivities
from warroom.activities.statuspage import StatusPageActivities
from warroom.logs import configure_logging
from warroom.models.config_store import CurrentConfig, seed_from_file
from warroom.models.policy import load_policy
from warroom.models.tables import create_schema, make_engine
from warroom.runbooks.steps import RunbookConfig
from warroom.settings import Settings
from warroom.statuspage.config import load_config
from warroom.temporal import connect
from warroom.workflows import WORKFLOWS

log = logging.getLogger("warroom.worker")


def build_worker(client: Client, settings: Settings, activities: IncidentActivities,
                 executor: ThreadPoolExecutor, extra: Sequence[Callable[..., object]] = ()) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=[*activities.all(), *extra],
        activity_executor=executor,
        max_concurrent_activities=64,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    )


def build_notifiers(settings: Settings) -> NotifierRegistry:
    """The channel for each contact method, from settings; the console serves
    whatever has no provider configured."""
    channels: dict[str, Channel] = {}
    if settings.twilio_configured:
        from warroom.activities.twilio_channels import TwilioSms, TwilioVoice, twilio_client

        assert settings.twilio_auth_token is not None and settings.twilio_from_number is not None
        client = twilio_client(
            str(settings.twilio_account_sid),
            settings.twilio_auth_token.get_secret_value(),
            settings.twilio_api_base,
            settings.provider_timeout_seconds,
        )
        channels["sms"] = TwilioSms(client, settings.twilio_from_number, settings.public_base_url)
        if settings.public_base_url:
            channels["voice"] = TwilioVoice(client, settings.twilio_from_number, settings.public_base_url)
        else:
            log.warning("Twilio voice pages are off: a call needs WARROOM_PUBLIC_BASE_URL for its words and keys")
    if settings.sendgrid_configured:
        from warroom.activities.sendgrid_channel import SendGridEmail

        assert settings.sendgrid_api_key is not None and settings.sendgrid_from_email is not None
        channels["email"] = SendGridEmail(
            settings.sendgrid_api_key.get_secret_value(),
            settings.sendgrid_from_email,
            settings.sendgrid_api_base,
            settings.provider_timeout_seconds,
        )
    return NotifierRegistry(channels=channels)


def build_activities(
    engine: Engine, settings: Settings, client: Client, notifiers: NotifierRegistry | None = None,
    config: CurrentConfig | None = None,
) -> IncidentActivities:
    return IncidentActivities(
        engine, notifiers or build_notifiers(settings), guard=WorkflowPageGuard(client), config=config
    )


def build_runbook_config(settings: Settings) -> RunbookConfig:
    return RunbookConfig(
        endpoints=dict(settings.runbook_endpoints),
        secrets={name: value.get_secret_value() for name, value in settings.runbook_secrets.items()},
    )


async def connect_with_retry(settings: Settings, attempts: int = 60) -> Client:
    for attempt in range(1, attempts + 1):
        try:
            return await connect(settings.temporal_target, settings.temporal_namespace)
        except Exception as err:  # noqa: BLE001 - any failure to connect is retried
            if attempt == attempts:
                raise
            log.info("waiting for Temporal at %s (%s)", settings.temporal_target, err.__class__.__name__)
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


async def run(settings: Settings) -> None:
    load_policy(settings.policy)  # refuse to start on a bad policy, naming the key
    statuspage = load_config(settings)  # ...and on a bad components file
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.read_model_url)
    create_schema(engine)
    version, seeded = seed_from_file(engine, settings.policy, datetime.now(UTC))
    log.info("on-call configuration: version %d%s", version, f" (seeded from {settings.policy})" if seeded else "")
    config = CurrentConfig(engine)
    client = await connect_with_retry(settings)
    notifiers = build_notifiers(settings)
    log.info("paging: %s", notifiers.describe())
    activities = build_activities(engine, settings, client, notifiers, config)
    runbook_activities = RunbookActivities(engine, build_runbook_config(settings))
    subscribers = StatusPageActivities(
        engine, notifiers, statuspage.catalog, statuspage.secret, statuspage.public_url, statuspage.page_url
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=64) as executor:
        worker = build_worker(
            client, settings, activities, executor,
            [*runbook_activities.all(), *subscribers.all(), *OnCallActivities(config).all()],
        )
        log.info("worker polling task queue %s on %s", settings.task_queue, settings.temporal_target)
        async with worker:
            await stop.wait()
            log.info("worker stopping")


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
