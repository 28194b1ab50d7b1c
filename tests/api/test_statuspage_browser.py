"""The public page in a real headless Chromium (Debian's ``chromium`` package, driven by
Playwright): an open incident declared through the API shows with its updates newest
first, with and without JavaScript, on a desktop and on a phone. Screenshots are
saved under ``test-artifacts/``."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.access import bearer, token_for
from tests.api.statuspage_helpers import make_app
from tests.conftest import ROOT, Harness

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it; CI never skips this)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def served(harness: Harness, tmp_path: Path) -> AsyncIterator[tuple[str, Engine]]:
    app = make_app(tmp_path, harness.engine, client=harness.client, task_queue=harness.task_queue)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", harness.engine
    finally:
        server.should_exit = True
        await task


UPDATES = [
    "We are investigating reports that DNS changes take longer than usual to publish.",
    "We found a stuck publisher on one name server and are restarting it.",
    "Publishing has caught up. We are watching it closely before we call this resolved.",
]
PHASES = [None, "identified", "monitoring"]
"""The public phase each update sets (the first keeps the initial one, investigating)."""


async def test_open_incident_and_its_updates_in_chromium(served: tuple[str, Engine]) -> None:
    served, engine = served
    from playwright.async_api import async_playwright

    alice = token_for(engine, "alice")

    assert CHROMIUM is not None, "chromium must be installed: apt-get install -y chromium"
    async with httpx.AsyncClient(base_url=served, timeout=10, headers=bearer(alice)) as http:
        made = await http.post("/api/incidents", json={
            "title": "DNS changes are slow to publish", "severity": "SEV-2", "components": ["dns", "email"]})
        assert made.status_code == 201, made.text
        number = made.json()["id"]
        for text, phase in zip(UPDATES, PHASES, strict=True):
            body = {"message": text} | ({"phase": phase} if phase else {})
            posted = await http.post(f"/api/incidents/{number}/status-updates", json=body)
            assert posted.status_code == 200, posted.text
            await asyncio.sleep(0.05)  # distinct timestamps, so "newest first" is well defined
        edited = await http.post(f"/api/incidents/{number}/components",
                                 json={"component": "email", "state": "degraded_performance"})
        assert edited.status_code == 200, edited.text
        await http.post("/api/maintenance", json={
            "title": "Billing database upgrade", "components": ["billing"], "description": "Invoices may load slowly.",
            "starts_at": "2099-01-10T02:00:00Z", "ends_at": "2099-01-10T03:00:00Z"})
        for _ in range(100):  # the read model follows the workflow within moments
            page = (await http.get("/status")).text
            if UPDATES[-1] in page and "Degraded performance" in page:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the page never showed the last update")

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            desktop = await browser.new_page(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Berlin")
            await desktop.goto(f"{served}/status")
            assert (await desktop.locator("#overall").inner_text()).strip().endswith("Partial outage")
            incident = desktop.locator(f"#incident-{number}")
            await incident.wait_for()
            shown = await incident.locator("ol.updates li .u-body").all_inner_texts()
            assert shown == list(reversed(UPDATES))
            labels = await incident.locator("ol.updates li .u-head strong").all_inner_texts()
            assert labels == ["Monitoring", "Identified", "Investigating"]
            assert (await incident.locator("p.phase").inner_text()).startswith("Monitoring:")
            assert await desktop.locator("#component-dns .state").inner_text() == "Partial outage"
            assert await desktop.locator("#component-email .state").inner_text() == "Degraded performance"
            assert await desktop.locator("#component-dns .bar span").count() == 90
            assert "Billing database upgrade" in await desktop.locator("#maintenance").inner_text()
            # The small script added the visitor's local time beside each UTC time.
            local = await desktop.locator("[data-js-local]").first.inner_text()
            assert "GMT+1" in local or "CET" in local, local
            await desktop.screenshot(path=str(ARTIFACTS / "statuspage-desktop.png"), full_page=True)

            phone_ctx = await browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, java_script_enabled=False
            )
            phone = await phone_ctx.new_page()
            await phone.goto(f"{served}/status")
            # Without JavaScript everything is there, in UTC.
            assert await phone.locator(f"#incident-{number} ol.updates li").count() == len(UPDATES)
            assert await phone.locator("[data-js-local]").first.inner_text() == ""
            width = await phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
            await phone.screenshot(path=str(ARTIFACTS / "statuspage-phone.png"), full_page=True)
            await phone.screenshot(path=str(ARTIFACTS / "statuspage-phone-first-screen.png"))
            await phone.goto(f"{served}/status/incidents/{number}")
            assert await phone.locator("ol.updates li").count() == len(UPDATES)
            await phone_ctx.close()
        finally:
            await browser.close()
