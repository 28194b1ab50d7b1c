"""SendGrid adapter: pages and notices by email through the v3 mail send API."""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Header, Mail

from warroom.activities.notify import PermanentDeliveryError, TransientDeliveryError, mask_contact
from warroom.models.incident import NotificationRequest
from warroom.models.subscribers import list_unsubscribe_headers

log = logging.getLogger("warroom.notify.sendgrid")

SENDGRID_API = "https://api.sendgrid.com"


def classify(err: Exception) -> Exception:
    if isinstance(err, HTTPError):
        status = int(err.status_code)
        body = err.body.decode("utf-8", "replace") if isinstance(err.body, bytes) else str(err.body or "")
        what = f"SendGrid answered {status}: {body[:300] or err.reason}"
        if status in (408, 429) or status >= 500:
            return TransientDeliveryError(what)
        return PermanentDeliveryError(what)
    if isinstance(err, (TimeoutError, socket.timeout)):
        return TransientDeliveryError("SendGrid did not answer in time")
    if isinstance(err, (URLError, ConnectionError, OSError)):
        return TransientDeliveryError(f"cannot reach SendGrid ({type(err).__name__})")
    return err


class SendGridEmail:
    provider = "sendgrid"

    def __init__(self, api_key: str, from_email: str, api_base: str | None, timeout: float) -> None:
        self._sg = SendGridAPIClient(api_key=api_key, host=(api_base or SENDGRID_API).rstrip("/"))
        self._from = from_email
        self._timeout = timeout

    async def send(self, contact: str, req: NotificationRequest) -> str:
        mail = Mail(from_email=self._from, to_emails=contact, subject=req.subject, plain_text_content=req.text)
        mail.custom_arg = CustomArg("warroom_key", req.key)
        if req.unsubscribe_url:  # a status-page subscriber: the mail client's own unsubscribe button
            for name, value in list_unsubscribe_headers(req.unsubscribe_url).items():
                mail.header = Header(name, value)
        try:
            response = await asyncio.to_thread(
                self._sg.client.mail.send.post, request_body=mail.get(), timeout=self._timeout
            )
        except Exception as err:  # noqa: BLE001 - classified below, unknown errors re-raised
            mapped = classify(err)
            if mapped is err:
                raise
            raise mapped from None
        message_id = response.headers.get("X-Message-Id", "") if response.headers else ""
        log.info("email %s to %s (%s)", message_id or "-", mask_contact(contact), req.key,
                 extra={"incident": req.incident_number})
        return message_id
