"""Fixtures for the paging tests: fake Twilio and SendGrid servers that fail a test
on any message it did not claim, and settings that point the real SDKs at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import ACCOUNT_SID, AUTH_TOKEN, FROM_EMAIL, FROM_NUMBER, SENDGRID_KEY, FakeSendGrid, FakeTwilio
from warroom.settings import Settings

PUBLIC_URL = "https://pager.example.test:8443/warroom"
"""What Twilio would be configured with: a proxy on a non-standard port, under a path."""


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    fake.base_url = fake.start()  # type: ignore[attr-defined]
    try:
        yield fake
        fake.assert_all_claimed()
    finally:
        fake.stop()


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid()
    fake.base_url = fake.start()  # type: ignore[attr-defined]
    try:
        yield fake
        fake.assert_all_claimed()
    finally:
        fake.stop()


def provider_settings(tmp_path: Path, twilio: FakeTwilio, sendgrid: FakeSendGrid, **extra: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "public_base_url": PUBLIC_URL,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from_number": FROM_NUMBER,
        "twilio_api_base": twilio.base_url,  # type: ignore[attr-defined]
        "sendgrid_api_key": SENDGRID_KEY,
        "sendgrid_from_email": FROM_EMAIL,
        "sendgrid_api_base": sendgrid.base_url,  # type: ignore[attr-defined]
        "provider_timeout_seconds": 2.0,
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]
