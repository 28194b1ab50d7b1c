"""The responder console in a real headless Chromium against the real API, worker and Temporal:
sign in, declare, acknowledge and resolve an incident by clicking. Screenshots of each step go
to test-artifacts/console/ (gitignored; CI keeps them as artifacts)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import ensure_user
from tests.api import support
from tests.conftest import ROOT, running_worker
from tests.stack import free_port, write_policy
from warroom.api.app import create_app
from warroom.models.access import Role
from warroom.settings import Settings

ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = shutil.which("chromium")
PASSWORD = "correct horse battery"
TEMPORAL_UI = "http://temporal-ui.test"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it; CI never skips this)",
)


@pytest.fixture
async def served(client: Client, primary_engine: Engine, tmp_path: Path) -> AsyncIterator[str]:
    engine = primary_engine  # the browser drives pages; the per-backend API tests cover the database
    settings = Settings(
        data_dir=tmp_path, policy=write_policy(tmp_path / "policy.yaml"), command_timeout_seconds=10,
        task_queue=f"console-browser-{tmp_path.name[-12:]}", temporal_ui_url=TEMPORAL_UI,
    )
    support.seed_numbers(engine, next(support._blocks) * support.BLOCK + 1)
    ensure_user(engine, "erin", Role.RESPONDER, password=PASSWORD)
    app = create_app(settings, client=client, engine=engine)
    async with running_worker(client, engine, settings.task_queue):
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


async def reload_until(page: Any, what: str, read: Callable[[], Awaitable[str]], text: str) -> None:
    """The list reads the read model, which the workflow's persist activity updates a moment
    after the command: reload until it shows ``text`` (bounded)."""
    deadline = time.monotonic() + 10
    while text not in await read():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.2)
        await page.reload()


async def test_sign_in_declare_acknowledge_and_resolve_by_clicking(served: str) -> None:
    from playwright.async_api import async_playwright

    assert CHROMIUM is not None, "chromium must be installed: apt-get install -y chromium"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                           args=["--no-sandbox", "--disable-background-networking"])
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            failed: list[str] = []
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)

            await page.goto(f"{served}/console")
            assert page.url == f"{served}/login?next=/console", "the console needs a sign-in"
            await page.fill("#username", "erin")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{served}/console")
            assert "No open incidents" in await page.inner_text("main")
            await page.screenshot(path=str(ARTIFACTS / "1-console-empty.png"), full_page=True)

            await page.fill("#title", "Control panel returns 502 for EU customers")
            await page.select_option("#severity", "SEV-2")
            await page.fill("#components", "control-panel")
            await page.fill("#summary", "Sign-ins fail since the 02:30 deploy.")
            await page.click("#declare button[type=submit]")
            await page.wait_for_url(f"{served}/console/incidents/*")
            number = int(page.url.rsplit("/", 1)[1])
            assert f"Declared incident #{number}" in await page.inner_text("[role=status]")
            assert await page.inner_text("#state") == "triggered"
            assert await page.evaluate("document.body.classList.contains('js')"), \
                "the inline script ran: the page's CSP allows it by hash"
            deadlines = await page.inner_text("#deadlines")
            assert "acknowledge (or it escalates)" in deadlines and " left" in deadlines
            link = await page.get_attribute("#temporal-link", "href")
            assert link == f"{TEMPORAL_UI}/namespaces/default/workflows/incident-{number}"
            await page.screenshot(path=str(ARTIFACTS / "2-incident-declared.png"), full_page=True)

            await page.click("#acknowledge")
            await page.wait_for_url(f"{served}/console/incidents/{number}")
            assert await page.inner_text("#state") == "acknowledged"
            assert "Acknowledged by erin" in await page.inner_text("#timeline")
            assert await page.locator("#ack-form").count() == 0, "nothing left to acknowledge"
            await page.screenshot(path=str(ARTIFACTS / "3-incident-acknowledged.png"), full_page=True)

            await page.click("text=Open incidents")
            await page.wait_for_url(f"{served}/console")
            row = page.locator(f'tr[data-incident="{number}"]')
            await reload_until(page, "the list shows the ack", lambda: row.inner_text(), "acknowledged")
            assert "first public status update" in await row.inner_text()
            await page.screenshot(path=str(ARTIFACTS / "4-console-open-incident.png"), full_page=True)

            await row.locator("a").first.click()
            await page.wait_for_url(f"{served}/console/incidents/{number}")
            await page.fill("#resolve-summary", "Rolled back the 02:30 deploy.")
            await page.fill("#resolve-impact", "EU customers could not sign in for 25 minutes.")
            await page.click("#resolve")
            await page.wait_for_url(f"{served}/console/incidents/{number}")
            assert await page.inner_text("#state") == "resolved"
            assert "Rolled back the 02:30 deploy." in await page.inner_text("#summary")
            assert await page.locator("#actions").count() == 0, "a resolved incident takes no more commands here"
            await page.screenshot(path=str(ARTIFACTS / "5-incident-resolved.png"), full_page=True)

            await page.click("text=Open incidents")
            await page.wait_for_url(f"{served}/console")
            await reload_until(page, "a resolved SEV-2 owes a postmortem", lambda: page.inner_text("main"),
                               "Postmortems due")
            assert await page.locator(f'#open-incidents tr[data-incident="{number}"]').count() == 0
            await page.screenshot(path=str(ARTIFACTS / "6-console-postmortem-due.png"), full_page=True)
            await page.click(f'#postmortems-due a[href="/incidents/{number}/postmortem"]')
            await page.wait_for_url(f"{served}/incidents/{number}/postmortem")
            assert "Rolled back the 02:30 deploy." in await page.content(), "the editor starts from the record"
            assert not failed, failed
            assert not [e for e in errors if "Failed to load resource" not in e], errors
        finally:
            await browser.close()
