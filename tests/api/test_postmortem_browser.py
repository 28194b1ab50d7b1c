"""The postmortem editor, the postmortems-due list and the metrics dashboard in a real headless
Chromium, against the API, a worker and the session's Temporal dev server: sign in, find the
postmortem due, save a draft, be told what is missing, submit; then read the dashboard.
Screenshots go to test-artifacts/ (ignored by git)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import bearer, ensure_user, token_for
from tests.api.support import BLOCK, _blocks, seed_numbers
from tests.conftest import ROOT, running_worker
from tests.stack import free_port, write_policy
from warroom.api.app import create_app
from warroom.models.access import Role
from warroom.settings import Settings

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium")
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it; CI never skips this)",
)


@pytest.fixture
async def served(client: Client, primary_engine: Engine, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    engine = primary_engine
    settings = Settings(data_dir=tmp_path, policy=write_policy(tmp_path / "policy.yaml"),
                        task_queue=f"pm-browser-{uuid.uuid4().hex[:8]}", command_timeout_seconds=10)
    seed_numbers(engine, next(_blocks) * BLOCK + 1)
    app = create_app(settings, client=client, engine=engine)
    ensure_user(engine, "erin", Role.RESPONDER, password=PASSWORD)
    alice = token_for(engine, "alice")
    port = free_port()
    async with running_worker(client, engine, settings.task_queue):
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}", alice
        finally:
            server.should_exit = True
            await task


async def resolved_incident(base: str, token: str) -> int:
    async with httpx.AsyncClient(base_url=base, headers=bearer(token), timeout=15) as http:
        inc = (await http.post("/api/incidents", json={"title": "DNS changes publish slowly", "severity": "SEV-2",
                                                       "components": ["dns"]})).json()
        number = int(inc["id"])
        assert (await http.post(f"/api/incidents/{number}/acknowledge", json={})).status_code == 200
        resp = await http.post(f"/api/incidents/{number}/resolve", json={"summary": "Rolled back the publisher.",
                                                                        "impact": "DNS changes were late."})
        assert resp.status_code == 200, resp.text
        for _ in range(100):
            if (await http.get(f"/api/incidents/{number}/postmortem")).status_code == 200:
                return number
            await asyncio.sleep(0.1)
    raise AssertionError("the resolved incident never reached the read model")


async def test_write_and_submit_a_postmortem_then_read_the_dashboard(served: tuple[str, str]) -> None:
    from playwright.async_api import async_playwright

    base, alice = served
    number = await resolved_incident(base, alice)
    assert CHROMIUM is not None
    ARTIFACTS.mkdir(exist_ok=True)
    due = (datetime.now(UTC) + timedelta(days=21)).strftime("%Y-%m-%d")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                           args=["--no-sandbox", "--disable-background-networking"])
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{base}/login?next=/postmortems")
            await page.fill("#username", "erin")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/postmortems")
            row = page.locator("tr", has_text=f"#{number} DNS changes publish slowly")
            assert "left" in await row.inner_text() and "not started" in await row.inner_text()
            await page.screenshot(path=str(ARTIFACTS / "postmortems-due.png"), full_page=True)

            await row.locator("a").click()
            await page.wait_for_url(f"{base}/incidents/{number}/postmortem")
            assert "Declared SEV-2 by alice" in await page.input_value("#timeline")
            assert "Rolled back the publisher." in await page.input_value("#summary")
            await page.fill("#root_cause", "A schema change made the publisher scan every zone on each change.")
            await page.fill("input[name=item_title] >> nth=0", "Index the zone table")
            await page.fill("input[name=item_owner] >> nth=0", "bob")
            await page.fill("input[name=item_due] >> nth=0", due)
            await page.select_option("select[name=item_priority] >> nth=0", "high")
            await page.click("button[value=save]")
            await page.wait_for_url(f"{base}/incidents/{number}/postmortem?saved=1")
            assert "Draft saved." in await page.inner_text("[role=status]")
            assert "written by erin" in await page.inner_text("main")
            assert await page.input_value("input[name=item_owner] >> nth=0") == "bob"

            await page.click("button[value=submit]")  # what went well / could improve still empty
            alert = await page.inner_text("[role=alert]")
            assert "what went well is empty" in alert and "what could improve is empty" in alert
            await page.screenshot(path=str(ARTIFACTS / "postmortem-editor-missing.png"), full_page=True)

            await page.fill("#what_went_well", "The page reached the on-call engineer within a minute.")
            await page.fill("#what_could_improve", "No alert watched the publish lag; it was found by a customer.")
            await page.click("button[value=submit]")
            await page.wait_for_url(f"{base}/incidents/{number}/postmortem?submitted=1")
            assert "Postmortem submitted" in await page.inner_text("[role=status]")
            assert await page.locator("button[value=submit]").count() == 0, "a submitted postmortem is read-only"
            await page.screenshot(path=str(ARTIFACTS / "postmortem-editor-submitted.png"), full_page=True)

            await page.goto(f"{base}/postmortems")
            assert "No postmortem is waiting" in await page.inner_text("main")
            for _ in range(50):  # the tracker writes its read model a moment after the submission
                if await page.locator("tr", has_text="Index the zone table").count():
                    break
                await asyncio.sleep(0.2)
                await page.reload()
            assert "bob" in await page.locator("tr", has_text="Index the zone table").inner_text()
            await page.screenshot(path=str(ARTIFACTS / "action-items-open.png"), full_page=True)
            # Hand the item to alice with a later date, from the list itself.
            moved = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
            row = page.locator("tr", has_text="Index the zone table")
            await row.locator("summary", has_text="Change").click()
            await row.locator("form[action$='/edit'] button").click()  # nothing chosen
            assert "nothing to change" in await page.inner_text("[role=alert]")
            row = page.locator("tr", has_text="Index the zone table")
            await row.locator("summary", has_text="Change").click()
            await row.locator("select[name=owner]").select_option("alice")
            await row.locator("input[name=due]").fill(moved)
            await row.locator("input[name=title]").fill("Index the zone table by name")
            await row.locator("form[action$='/edit'] button").click()
            await page.wait_for_url(f"{base}/postmortems?changed={number}-1")
            assert f"Action item 1 of #{number} changed." in await page.inner_text("[role=status]")
            cells = page.locator("tr", has_text="Index the zone table").locator("td")
            assert (await cells.nth(1).inner_text()).strip() == "Index the zone table by name"
            assert (await cells.nth(2).inner_text()).strip() == "alice"
            assert moved in await cells.nth(4).inner_text()
            await page.locator("tr", has_text="Index the zone table").locator("text=Mark done").click()
            await page.wait_for_url(f"{base}/postmortems")
            assert "No open action items" in await page.inner_text("main")
            # Something found after the postmortem: added from its page, tracked again.
            await page.goto(f"{base}/incidents/{number}/postmortem")
            add = page.locator("form#add-item")
            await add.locator("input[name=title]").fill("Alert on publish lag")
            await add.locator("button").click()  # no owner, no date
            assert "needs an owner, a due date" in await page.inner_text("[role=alert]")
            add = page.locator("form#add-item")
            assert await add.locator("input[name=title]").input_value() == "Alert on publish lag"
            await add.locator("select[name=owner]").select_option("bob")
            await add.locator("input[name=due]").fill(moved)
            await add.locator("button").click()
            await page.wait_for_url(f"{base}/postmortems?added={number}")
            assert f"Action item added to #{number}" in await page.inner_text("[role=status]")
            for _ in range(50):  # the restarted tracker writes its read model a moment later
                if await page.locator("tr", has_text="Alert on publish lag").count():
                    break
                await asyncio.sleep(0.2)
                await page.reload()
            cells = page.locator("tr", has_text="Alert on publish lag").locator("td")
            assert (await cells.nth(2).inner_text()).strip() == "bob"

            await page.goto(f"{base}/dashboard")
            assert await page.locator("svg[role=img]").count() == 6
            sev2 = await page.locator("#by-severity tr", has_text="SEV-2").inner_text()
            assert sev2.split("\t")[1].strip() == "1", sev2
            assert "never acknowledged" in (await page.inner_text("main")).lower()
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            await browser.close()
