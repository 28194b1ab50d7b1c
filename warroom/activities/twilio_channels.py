"""Twilio adapters: SMS through the Messages API, pages by phone through the Calls API.

The call's words and its key press are served by warroom itself
(``/api/webhooks/twilio/voice``); Twilio reports what became of each message and
call to ``/api/webhooks/twilio/status``. Both URLs are built from the configured
public base URL, the same one the webhooks verify signatures against.

The SDK is synchronous (requests); each call runs in a worker thread with a
timeout, so a hung Twilio never blocks the worker's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from warroom.activities.notify import PermanentDeliveryError, TransientDeliveryError, mask_contact
from warroom.models.incident import NotificationRequest
from warroom.models.paging import same_number

log = logging.getLogger("warroom.notify.twilio")

TWILIO_API = "https://api.twilio.com"
SMS_MAX = 1600
"""Twilio's limit for one message body (it splits it into segments)."""
RING_SECONDS = 30

SMS_PATH = "/api/webhooks/twilio/sms"
VOICE_PATH = "/api/webhooks/twilio/voice"
STATUS_PATH = "/api/webhooks/twilio/status"


class _BaseUrlHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, pointed at another base URL (a local fake in tests,
    a regional edge or an egress proxy in production)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._base = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_API):
            url = self._base + url[len(TWILIO_API):]
        return super().request(method, url, *args, **kwargs)


def twilio_client(account_sid: str, auth_token: str, api_base: str | None, timeout: float) -> Client:
    http = _BaseUrlHttpClient(api_base, timeout) if api_base else TwilioHttpClient(timeout=timeout)
    return Client(account_sid, auth_token, http_client=http)


def classify(err: Exception) -> Exception:
    """Map an SDK failure onto warroom's two kinds. 4xx (invalid number, opted out,
    unverified caller id, bad credentials) will fail the same way again; 5xx, 429,
    408 and network trouble may not."""
    if isinstance(err, TwilioRestException):
        code = f" (Twilio error {err.code})" if err.code else ""
        what = f"Twilio answered {err.status}{code}: {err.msg or 'no message'}"
        if err.status in (408, 429) or err.status >= 500:
            return TransientDeliveryError(what)
        return PermanentDeliveryError(what)
    if isinstance(err, requests.Timeout):
        return TransientDeliveryError("Twilio did not answer in time")
    if isinstance(err, requests.RequestException):
        return TransientDeliveryError(f"cannot reach Twilio ({type(err).__name__})")
    if isinstance(err, TwilioException):
        return PermanentDeliveryError(f"Twilio client error: {err}")
    return err


class _TwilioChannel:
    provider = "twilio"

    def __init__(self, client: Client, from_number: str, public_base_url: str | None) -> None:
        self._client = client
        self._from = from_number
        self._public = public_base_url.rstrip("/") if public_base_url else None

    def _check_target(self, contact: str) -> None:
        if same_number(contact, self._from):
            raise PermanentDeliveryError("refusing to page warroom's own Twilio number")

    async def _call(self, fn: Any, **kwargs: Any) -> str:
        try:
            resource = await asyncio.to_thread(fn, **kwargs)
        except Exception as err:  # noqa: BLE001 - classified below, unknown errors re-raised
            mapped = classify(err)
            if mapped is err:
                raise
            raise mapped from None
        return str(resource.sid)


class TwilioSms(_TwilioChannel):
    async def send(self, contact: str, req: NotificationRequest) -> str:
        self._check_target(contact)
        args: dict[str, Any] = {"to": contact, "from_": self._from, "body": req.text[:SMS_MAX]}
        if self._public:
            args["status_callback"] = self._public + STATUS_PATH
        sid = await self._call(self._client.messages.create, **args)
        log.info("SMS %s to %s (%s)", sid, mask_contact(contact), req.key, extra={"incident": req.incident_number})
        return sid


class TwilioVoice(_TwilioChannel):
    """Places the call; what it says comes from warroom's voice webhook when answered."""

    def __init__(self, client: Client, from_number: str, public_base_url: str) -> None:
        super().__init__(client, from_number, public_base_url)

    async def send(self, contact: str, req: NotificationRequest) -> str:
        self._check_target(contact)
        assert self._public is not None
        sid = await self._call(
            self._client.calls.create,
            to=contact,
            from_=self._from,
            url=self._public + VOICE_PATH,
            method="POST",
            status_callback=self._public + STATUS_PATH,
            status_callback_method="POST",
            status_callback_event=["completed"],
            timeout=RING_SECONDS,
        )
        log.info("call %s to %s (%s)", sid, mask_contact(contact), req.key, extra={"incident": req.incident_number})
        return sid
