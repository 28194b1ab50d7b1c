"""The worker process: every workflow and activity, wired from settings."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker

from warroom.activities.chat import ChatActivities, SlackConfig
from warroom.activities.detection import AlertIntake, DetectionActivities
from warroom.activities.uptime import UptimeActivities
from warroom.check_schedules import sync_check_schedules
from warroom.activities.incident import IncidentActivities, WorkflowPageGuard
from warroom.activities.notify import Channel, NotifierRegistry
from warroom.activities.oncall import OnCallActivities
from warroom.activities.runbook import HEARTBEAT_THROTTLE, RunbookActivities
from warroom.activities.statuspage import StatusPageActivities
from warroom.logs import configure_logging
from warroom.migrations import SchemaNotCurrent
from warroom.models.components import load_catalog
from warroom.models.config_store import CurrentConfig, seed_from_file
from warroom.models.detection import DetectionError, load_detection
from warroom.models.policy import PolicyError, load_policy
from warroom.runbooks.steps import RunbookConfig
from warroom.settings import Settings
from warroom.startup import DependencyUnavailable, open_read_model, wait_for_temporal
from warroom.statuspage.config import load_config
from warroom.temporal import WORKFLOW_RUNNER, precompile_workflows
from warroom.workflows import WORKFLOWS

log = logging.getLogger("warroom.worker")


POLLERS = PollerBehaviorAutoscaling(minimum=1, maximum=100, initial=5)


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
        workflow_runner=WORKFLOW_RUNNER,
        # Pollers follow the load the server reports instead of a fixed five: an alert storm
        # gets more, an idle worker holds fewer long polls open.
        workflow_task_poller_behavior=POLLERS,
        activity_task_poller_behavior=POLLERS,
        # On SIGTERM (a scale-down, a deploy) let sends in flight finish rather than cut them off.
        graceful_shutdown_timeout=timedelta(seconds=10),
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


def build_chat(engine: Engine, settings: Settings) -> ChatActivities:
    """The incident channel and outgoing webhooks; both off unless configured."""
    slack = None
    if settings.slack_configured:
        assert settings.slack_bot_token is not None
        slack = SlackConfig(
            token=settings.slack_bot_token.get_secret_value(),
            api_url=settings.slack_api_url,
            timeout=settings.chat_timeout_seconds,
            prefix=settings.slack_channel_prefix,
            private=settings.slack_private_channels,
            users=dict(settings.slack_users),
        )
    return ChatActivities(
        engine, slack, settings.webhooks, site_url=settings.site_url, temporal_ui=settings.temporal_ui_base,
        namespace=settings.temporal_namespace, webhook_timeout=settings.chat_timeout_seconds,
    )


HEALTH_INTERVAL_SECONDS = 10.0


async def keep_health_file(client: Client, engine: Engine, path: Path, stop: asyncio.Event) -> None:
    """Touch ``path`` every few seconds while Temporal and the database both answer."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(client.service_client.check_health(), HEALTH_INTERVAL_SECONDS / 2)
            await asyncio.to_thread(_ping, engine)
        except Exception as err:  # noqa: BLE001 - unhealthy: the file goes stale
            log.warning("health check failed (%s); %s is no longer refreshed", type(err).__name__, path)
        else:
            path.touch()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEALTH_INTERVAL_SECONDS)


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def health_file_fresh(path: Path, now: float | None = None) -> bool:
    """True when the worker refreshed its health file recently enough."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age <= 3 * HEALTH_INTERVAL_SECONDS


async def run(settings: Settings) -> None:
    load_policy(settings.policy)  # refuse to start on a bad policy, naming the key
    precompile_workflows()  # the sandbox re-imports workflow modules per run: never recompile them
    catalog = load_catalog(settings.components)  # ...and on a bad components file
    detection = load_detection(settings.detection)  # ...and on bad alert rules
    engine = await asyncio.to_thread(open_read_model, settings)
    statuspage = await asyncio.to_thread(load_config, settings, engine, catalog)  # the secret the API uses too
    version, seeded = seed_from_file(engine, settings.policy, datetime.now(UTC),
                                     where=f"warroom worker on {socket.gethostname()}")
    log.info("on-call configuration: version %d%s", version, f" (seeded from {settings.policy})" if seeded else "")
    config = CurrentConfig(engine)
    client = await wait_for_temporal(settings)
    notifiers = build_notifiers(settings)
    log.info("paging: %s", notifiers.describe())
    log.info("incident channel: %s; outgoing webhooks: %d", "Slack" if settings.slack_configured else "off",
             len(settings.webhooks))
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
            [*runbook_activities.all(), *subscribers.all(), *OnCallActivities(config).all(),
             *build_chat(engine, settings).all(),
             *DetectionActivities(AlertIntake(engine, detection, statuspage.catalog, relay=settings.relay_targets),
                                  load_policy(settings.policy), config).all(),
             *UptimeActivities(engine).all()],
        )
        log.info("worker polling task queue %s on %s", settings.task_queue, settings.temporal_target)
        checks = await sync_check_schedules(client, detection.checks, settings.task_queue)
        log.info("uptime checks: %s", ", ".join(checks) or "none configured")
        async with worker:
            health = (
                asyncio.create_task(keep_health_file(client, engine, settings.health_file, stop))
                if settings.health_file is not None
                else None
            )
            await stop.wait()
            log.info("worker stopping; letting running activities finish")
            if health is not None:
                await health
    engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m warroom.worker", description="The warroom Temporal worker.")
    parser.add_argument(
        "--healthcheck",
        action="store_true",
        help="exit 0 if the running worker refreshed WARROOM_HEALTH_FILE recently, else 1 (for containers)",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    if args.healthcheck:
        if settings.health_file is None:
            sys.exit("warroom worker: set WARROOM_HEALTH_FILE to use --healthcheck")
        sys.exit(0 if health_file_fresh(settings.health_file) else 1)
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(run(settings))
    except (DependencyUnavailable, SchemaNotCurrent, PolicyError, DetectionError) as err:
        log.error("cannot start: %s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()
