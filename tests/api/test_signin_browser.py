"""Signing in and out in a real headless Chromium: the cookie, the CSRF-protected forms and
the security headers work together in a browser, not only in httpx."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine

from tests.access import ensure_user
from tests.api.statuspage_helpers import make_app
from tests.conftest import ROOT
from tests.stack import free_port
from warroom.models.access import Role

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium")
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it; CI never skips this)",
)


@pytest.fixture
async def served(engine: Engine, tmp_path: Path) -> AsyncIterator[str]:
    app = make_app(tmp_path, engine)
    ensure_user(engine, "erin", Role.RESPONDER, password=PASSWORD)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_sign_in_see_the_account_and_sign_out(served: str) -> None:
    from playwright.async_api import async_playwright

    assert CHROMIUM is not None, "chromium must be installed: apt-get install -y chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{served}/account")
            assert page.url == f"{served}/login?next=/account", "a page without a sign-in sends you to /login"
            await page.fill("#username", "erin")
            await page.fill("#password", "not the password, sorry")
            await page.click("button[type=submit]")
            assert "Wrong user name or password" in await page.inner_text("[role=alert]")
            await page.fill("#username", "erin")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{served}/account")
            assert "responder" in await page.inner_text("dl")
            await page.screenshot(path=str(ARTIFACTS / "account.png"), full_page=True)
            me = await page.evaluate("fetch('/api/me').then(r => r.json())")
            assert me["user"] == "erin" and me["via"] == "session"
            await page.click("text=Sign out")
            await page.wait_for_url(f"{served}/login")
            await page.goto(f"{served}/account")
            assert page.url.startswith(f"{served}/login"), "signed out: the cookie no longer works"
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            await browser.close()
