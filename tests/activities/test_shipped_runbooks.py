"""The shipped runbooks, step by step, against the stand-in platform: each break
mode is repaired by the runbook written for it (people's steps are taken as done).

The certificate runbook needs a person to renew the certificate half-way, so it
runs whole, with that person, in tests/workflow/test_runbook_runs.py, as do the
DNS, mail and payment runbooks with their people's steps."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.testing import ActivityEnvironment

from tests.standin import running_platform
from warroom.activities.runbook import RunbookActivities
from warroom.models.runbook import AUTOMATED_KINDS, StepRequest, check_params, step_key
from warroom.runbooks import load_catalogue
from warroom.runbooks.steps import RunbookConfig

TOKEN = "shipped-runbook-token"


@pytest.mark.parametrize(
    ("mode", "runbook_id", "params"),
    [
        ("deploy", "deployment-rollback", {}),
        ("database", "database-failover", {}),
        ("crash", "service-restart", {}),
        ("load", "scale-up", {"replicas": 8}),
        ("flag", "feature-flag-disable", {"flag": "new-checkout"}),
        ("dns", "dns-propagation-issues", {"domain": "shop.example.com"}),
        ("mail", "email-delivery-failures", {}),
        ("payments", "payment-processing-outage", {}),
    ],
)
async def test_each_break_is_repaired_by_its_runbook(
    engine: Engine, mode: str, runbook_id: str, params: dict[str, Any]
) -> None:
    rb = load_catalogue().runbooks[runbook_id]
    values = check_params(rb, params)
    with running_platform(token=TOKEN) as platform:
        platform.break_(mode)
        assert platform.state.problems()
        acts = RunbookActivities(
            engine, RunbookConfig(endpoints={"platform": platform.url}, secrets={"platform_token": TOKEN})
        )
        by_kind = {"http": acts.http_step, "shell": acts.shell_step, "wait_until_healthy": acts.wait_step}
        for index, step in enumerate(rb.steps, start=1):
            if step.kind not in AUTOMATED_KINDS:
                continue
            if step.kind == "wait_until_healthy":
                step = step.model_copy(update={"interval": step.interval / 20})
            req = StepRequest(key=step_key(1, 1, index, 1), incident_number=1, run=1, step_index=index,
                              attempt=1, step=step, params=values)
            outcome = await ActivityEnvironment().run(by_kind[step.kind], req)
            assert outcome.ok, f"{runbook_id} step {index}: {outcome.summary} {outcome.output}"
        assert platform.state.problems() == []


async def test_maintenance_mode_switches_on_and_off(engine: Engine) -> None:
    rb = load_catalogue().runbooks["maintenance-mode"]
    with running_platform(token=TOKEN) as platform:
        acts = RunbookActivities(
            engine, RunbookConfig(endpoints={"platform": platform.url}, secrets={"platform_token": TOKEN})
        )
        for run, enabled in ((1, True), (2, False)):
            values = check_params(rb, {"enabled": str(enabled).lower()})
            req = StepRequest(key=step_key(1, run, 1, 1), incident_number=1, run=run, step_index=1, attempt=1,
                              step=rb.steps[0], params=values)
            assert (await ActivityEnvironment().run(acts.http_step, req)).ok
            assert platform.state.maintenance is enabled
        assert platform.state.maintenance_message == ""


def test_the_certificate_break_needs_the_tls_site() -> None:
    """Without --tls-port there is no certificate to expire: the control says so instead
    of reporting a problem no runbook could check."""
    with running_platform() as platform:
        for path, body in (("/break", {"mode": "certificate"}), ("/renew-certificate", {})):
            r = httpx.post(platform.url + path, json=body)
            assert r.status_code == 409 and "--tls-port" in r.json()["error"], r.text
        assert platform.state.problems() == []
