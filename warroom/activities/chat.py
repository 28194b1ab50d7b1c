"""The incident channel in Slack and the outgoing webhooks: the activities that talk to them.

``relay_to_slack`` brings an incident's channel up to date: creates it (once:
the channel is recorded in ``chat_channels``), invites the people involved who
have a Slack member id, posts and pins the status message and keeps it current
with ``chat.update`` (only when its text changes), and posts the timeline
entries it has not posted yet, recording each one as it goes, so a retry
resumes where the last attempt stopped.

``relay_to_webhooks`` sends each timeline entry to each configured endpoint as
signed JSON, once per endpoint and entry (a unique row per delivery). A
receiver that answers 4xx has refused the event for good (recorded, not sent
again); a 5xx, a 429, a timeout or a refused connection fails the activity,
which is retried, and the incident's timeline says so.

Transient trouble raises (Temporal retries); a bad token raises a
non-retryable ``ChatConfigError``. Secrets never reach a log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from warroom.models.chat import (
    NOT_MIRRORED,
    WEBHOOKS,
    WEBHOOK_EVENT_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
    Links,
    RelayInput,
    RelayResult,
    RelaySnapshot,
    WebhookEndpoint,
    channel_name,
    digest,
    entry_text,
    event_key,
    links_for,
    numbered_name,
    status_blocks,
    status_text,
    webhook_event,
    webhook_signature,
)
from warroom.models.ids import RELAY_SLACK_ACTIVITY, RELAY_WEBHOOKS_ACTIVITY
from warroom.models.tables import ChatChannelRow, WebhookDeliveryRow

log = logging.getLogger("warroom.activities.chat")

TRANSIENT_SLACK_ERRORS = frozenset({
    "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org",
})
CONFIG_SLACK_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope",
    "not_allowed_token_type", "no_permission", "restricted_action",
})
NAME_ATTEMPTS = 5


class ChatUnavailable(Exception):
    """Slack or a webhook receiver failed this time; the activity is retried."""


class SlackRefused(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class SlackConfig:
    token: str
    api_url: str
    timeout: float = 10.0
    prefix: str = "inc"
    private: bool = False
    users: dict[str, str] = field(default_factory=dict)
    """Person id -> Slack member id (from settings); wins over the policy's ``slack:``."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class ChatActivities:
    def __init__(
        self,
        engine: Engine,
        slack: SlackConfig | None,
        webhooks: list[WebhookEndpoint],
        *,
        site_url: str,
        temporal_ui: str,
        namespace: str = "default",
        webhook_timeout: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._slack = slack
        self._hooks = list(webhooks)
        self._site_url, self._temporal_ui, self._namespace = site_url, temporal_ui, namespace
        self._webhook_timeout = webhook_timeout
        self._clock = clock

    def links(self, number: int) -> Links:
        return links_for(number, self._site_url, self._temporal_ui, self._namespace)

    # --- Slack ---------------------------------------------------------------------------------

    @activity.defn(name=RELAY_SLACK_ACTIVITY)
    def relay_to_slack(self, inp: RelayInput) -> RelayResult:
        cfg = self._slack
        if cfg is None:
            return RelayResult(enabled=False)
        client = WebClient(token=cfg.token, base_url=cfg.api_url, timeout=int(max(1, cfg.timeout)))
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))  # honours Retry-After
        snap, notes = inp.snapshot, []
        row = self._channel(snap.number)
        if row is None:
            row = self._create_channel(client, cfg, snap, notes)
        self._invite(client, cfg, row, snap, notes)
        self._show_status(client, row, snap)
        self._post_entries(client, row, inp)
        return RelayResult(notes=notes)

    def _call(self, client: WebClient, method: str, **params: object) -> dict[str, object]:
        try:
            response = client.api_call(method, json=params)
        except SlackApiError as err:
            error = str(err.response.get("error", "")) if err.response is not None else ""
            status = err.response.status_code if err.response is not None else 0
            if error in CONFIG_SLACK_ERRORS:
                raise ApplicationError(
                    f"Slack refused the bot token ({error}); check WARROOM_SLACK_BOT_TOKEN and the app's scopes",
                    type="ChatConfigError", non_retryable=True,
                ) from None
            if status == 429 or status >= 500 or error in TRANSIENT_SLACK_ERRORS or not error:
                raise ChatUnavailable(f"{method} answered {error or f'HTTP {status}'}") from None
            raise SlackRefused(error) from None
        except (SlackClientError, OSError) as err:
            raise ChatUnavailable(f"unreachable ({type(err).__name__})") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _channel(self, number: int) -> ChatChannelRow | None:
        with Session(self._engine) as session:
            row = session.get(ChatChannelRow, number)
            if row is not None:
                session.expunge(row)
            return row

    def _save(self, row: ChatChannelRow) -> None:
        with Session(self._engine) as session, session.begin():
            session.merge(row)

    def _create_channel(self, client: WebClient, cfg: SlackConfig, snap: RelaySnapshot,
                        notes: list[str]) -> ChatChannelRow:
        base = channel_name(snap.number, snap.title, cfg.prefix)
        name = base
        for attempt in range(1, NAME_ATTEMPTS + 1):
            try:
                data = self._call(client, "conversations.create", name=name, is_private=cfg.private)
                break
            except SlackRefused as err:
                if err.error != "name_taken" or attempt == NAME_ATTEMPTS:
                    raise ApplicationError(f"Slack would not create #{name}: {err.error}",
                                           type="ChatConfigError", non_retryable=True) from None
                name = numbered_name(base, attempt + 1)
        channel = data.get("channel") or {}
        assert isinstance(channel, dict)
        created = str(channel.get("name", name))
        row = ChatChannelRow(incident_number=snap.number, channel_id=str(channel.get("id", "")),
                             name=created, status_ts=None, status_digest="",
                             posted_seq=0, invited=[], created_at=self._clock())
        try:
            with Session(self._engine) as session, session.begin():
                session.add(row)
        except IntegrityError:  # an earlier attempt got there first
            found = self._channel(snap.number)
            assert found is not None
            return found
        notes.append(f"Slack channel #{created} created for the response")
        log.info("Slack channel %s created", created, extra={"incident": snap.number})
        found = self._channel(snap.number)
        assert found is not None
        return found

    def _invite(self, client: WebClient, cfg: SlackConfig, row: ChatChannelRow, snap: RelaySnapshot,
                notes: list[str]) -> None:
        done = list(row.invited or [])
        changed = False
        for person in snap.people:
            if person.id in done or f"!{person.id}" in done:
                continue
            member = cfg.users.get(person.id) or person.slack
            if not member:
                notes.append(f"{person.id} is not invited to #{row.name}: no Slack member id is known for them "
                             f"(add 'slack: U...' to them in the policy, or WARROOM_SLACK_USERS)")
                done.append(f"!{person.id}")
                changed = True
                continue
            try:
                self._call(client, "conversations.invite", channel=row.channel_id, users=member)
            except SlackRefused as err:
                if err.error not in ("already_in_channel", "cant_invite_self"):
                    notes.append(f"{person.id} could not be invited to #{row.name}: Slack said {err.error}")
                    done.append(f"!{person.id}")
                    changed = True
                    continue
            done.append(person.id)
            changed = True
            row.invited = list(done)
            self._save(row)
        if changed:
            row.invited = list(done)
            self._save(row)

    def _show_status(self, client: WebClient, row: ChatChannelRow, snap: RelaySnapshot) -> None:
        links = self.links(snap.number)
        text, blocks = status_text(snap, links), status_blocks(snap, links)
        wanted = digest(text, blocks)
        posted = ""
        if row.status_ts is None:
            data = self._call(client, "chat.postMessage", channel=row.channel_id, text=text, blocks=blocks)
            row.status_ts = str(data.get("ts"))
            row.status_digest = ""  # posted, not pinned yet: a retry pins it
            self._save(row)
            posted = wanted
        if not row.status_digest:
            try:
                self._call(client, "pins.add", channel=row.channel_id, timestamp=row.status_ts)
            except SlackRefused as err:
                if err.error != "already_pinned":
                    log.warning("status message of #%s not pinned: %s", snap.number, err.error)
            if posted:
                row.status_digest = posted
                self._save(row)
        if row.status_digest != wanted:
            self._call(client, "chat.update", channel=row.channel_id, ts=row.status_ts, text=text, blocks=blocks)
            row.status_digest = wanted
            self._save(row)

    def _post_entries(self, client: WebClient, row: ChatChannelRow, inp: RelayInput) -> None:
        for entry in inp.entries:
            if entry.seq <= row.posted_seq:
                continue
            if entry.kind not in NOT_MIRRORED:
                self._call(client, "chat.postMessage", channel=row.channel_id, text=entry_text(entry))
            row.posted_seq = entry.seq
            self._save(row)

    # --- outgoing webhooks ------------------------------------------------------------------------

    @activity.defn(name=RELAY_WEBHOOKS_ACTIVITY)
    def relay_to_webhooks(self, inp: RelayInput) -> RelayResult:
        if not self._hooks:
            return RelayResult(enabled=False)
        snap, notes, failures = inp.snapshot, [], []
        with httpx.Client(timeout=self._webhook_timeout) as http:
            for endpoint in self._hooks:
                problem = self._deliver_all(http, endpoint, snap, inp, notes)
                if problem:
                    failures.append(problem)
        if failures:
            raise ChatUnavailable("; ".join(failures))
        return RelayResult(notes=notes)

    def _delivered(self, endpoint: str, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        with Session(self._engine) as session:
            rows = session.scalars(
                select(WebhookDeliveryRow.event_key).where(
                    WebhookDeliveryRow.endpoint == endpoint, WebhookDeliveryRow.event_key.in_(keys)
                )
            )
            return set(rows)

    def _record(self, endpoint: str, key: str, number: int, status: str, http_status: int | None,
                detail: str) -> None:
        try:
            with Session(self._engine) as session, session.begin():
                session.add(WebhookDeliveryRow(endpoint=endpoint, event_key=key, incident_number=number,
                                               status=status, http_status=http_status, detail=detail[:500],
                                               at=self._clock()))
        except IntegrityError:
            pass  # recorded by an attempt that ran at the same time

    def _deliver_all(self, http: httpx.Client, endpoint: WebhookEndpoint, snap: RelaySnapshot, inp: RelayInput,
                     notes: list[str]) -> str | None:
        """Deliver in timeline order; stop at the first transient failure (the retry resumes there)."""
        wanted = [e for e in inp.entries if endpoint.wants(e.kind) and (endpoint.kinds or e.kind not in NOT_MIRRORED)]
        done = self._delivered(endpoint.name, [event_key(snap.number, e.seq) for e in wanted])
        secret = endpoint.secret.get_secret_value()
        for entry in wanted:
            key = event_key(snap.number, entry.seq)
            if key in done:
                continue
            body = json.dumps(webhook_event(snap, entry), separators=(",", ":"), sort_keys=True).encode()
            timestamp = str(int(self._clock().timestamp()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "warroom-webhooks/1",
                WEBHOOK_TIMESTAMP_HEADER: timestamp,
                WEBHOOK_SIGNATURE_HEADER: webhook_signature(secret, timestamp, body),
                WEBHOOK_EVENT_HEADER: key,
                "Idempotency-Key": key,
            }
            try:
                answer = http.post(endpoint.url, content=body, headers=headers)
            except httpx.HTTPError as err:
                return f"webhook {endpoint.name} unreachable ({type(err).__name__})"
            code = answer.status_code
            if 200 <= code < 300:
                self._record(endpoint.name, key, snap.number, "delivered", code, "")
            elif code in (408, 429) or code >= 500:
                return f"webhook {endpoint.name} answered HTTP {code}"
            else:
                self._record(endpoint.name, key, snap.number, "refused", code, answer.text[:200])
                log.warning("webhook %s refused %s with HTTP %s; not sent again", endpoint.name, key, code)
                if entry.kind != WEBHOOKS:  # a note about a refusal that is itself refused would never end
                    notes.append(f"Webhook {endpoint.name} refused {key} with HTTP {code}; it is not sent again")
        return None

    def all(self) -> list[Callable[..., object]]:
        return [self.relay_to_slack, self.relay_to_webhooks]
