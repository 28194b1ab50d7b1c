"""The `warroom` CLI against a running API (uvicorn on a free port, a real worker)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine
from temporalio.client import Client
from typer.main import get_command
from typer.testing import CliRunner, Result

from tests.access import token_for
from tests.api.statuspage_helpers import add_incident
from tests.conftest import TestDatabase
from tests.live import LiveApi, free_port, live_api
from tests.standin import running_platform
from warroom import cli, migrations
from warroom.models.access import Role
from warroom.runbooks.steps import RunbookConfig

runner = CliRunner()


async def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI off the event loop: the worker that answers it lives on the loop."""
    return await asyncio.to_thread(runner.invoke, cli.app, list(args), env=env, catch_exceptions=False)


@pytest.fixture
async def api(client: Client, primary_database: TestDatabase, primary_engine: Engine,
              tmp_path: Path) -> AsyncIterator[LiveApi]:
    async with live_api(client, primary_database, primary_engine, tmp_path) as live:
        yield live


def postmortem_file(tmp_path: Path, **overrides: object) -> Path:
    due = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    doc: dict[str, object] = {
        "summary": "A DNS publisher change slowed zone updates.",
        "timeline": "14:02 deploy; 14:10 alerts; 14:25 rollback; 14:40 backlog drained.",
        "root_cause": "The new batching code held a lock across network calls.",
        "impact": "DNS changes took up to 14 minutes to publish.",
        "what_went_well": "The rollback was quick and well rehearsed.",
        "what_could_improve": "Canary the publisher on one region first.",
        "action_items": [{"title": "Add a publish-latency alert", "owner": "bob", "due": due}],
    }
    doc.update(overrides)
    path = tmp_path / "postmortem.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


async def test_an_incident_from_declaration_to_postmortem(api: LiveApi, tmp_path: Path) -> None:
    url = ["--api-url", api.url, "--token", api.token]
    declared = await run_cli("declare", "Control panel returns 502", "-s", "SEV-2", "-c", "control-panel",
                             "--as", "alice", *url)
    assert declared.exit_code == 0, declared.output
    assert declared.output.startswith("Declared #")
    assert "(SEV-2, triggered): Control panel returns 502" in declared.output
    number = int(declared.output.split("#")[1].split(" ")[0])

    listed = await run_cli("list", "--json", *url)
    assert listed.exit_code == 0
    # The list reads the read model, which the worker writes a moment later.
    for _ in range(50):
        rows = json.loads(listed.stdout)
        if any(r["id"] == number for r in rows):
            break
        await asyncio.sleep(0.1)
        listed = await run_cli("list", "--json", *url)
    assert [r["id"] for r in rows] == [number]

    human = await run_cli("list", "--status", "open", *url)
    assert human.output.splitlines()[0].split() == ["ID", "SEV", "STATUS", "DECLARED", "ACK", "BY", "TITLE"]
    assert f"#{number}" in human.output and "triggered" in human.output

    ack = await run_cli("ack", str(number), "--as", "alice", *url)
    assert (ack.exit_code, ack.output.strip()) == (0, f"#{number} (acknowledged): #{number} acknowledged by alice")
    again = await run_cli("ack", str(number), "--as", "alice", *url)
    assert again.exit_code == cli.EXIT_REFUSED
    assert f"incident #{number} was already acknowledged by alice (HTTP 409)" in again.stderr

    assert (await run_cli("role", str(number), "ic", "alice", *url)).exit_code == 0
    update = await run_cli("update", str(number), "We are rolling back the last deploy.", "--phase", "identified",
                           "--as", "alice", *url)
    assert update.exit_code == 0 and f"update posted on #{number} (identified)" in update.output
    unknown = await run_cli("update", str(number), "Fixed.", "--phase", "fixed", *url)
    assert unknown.exit_code == cli.EXIT_USAGE and "'fixed' is not one of" in unknown.output
    sev = await run_cli("severity", str(number), "SEV-1", "--reason", "all regions", "--json", *url)
    assert json.loads(sev.stdout)["message"] == f"#{number} is now SEV-1"

    shown = await run_cli("show", str(number), *url)
    assert shown.exit_code == 0
    assert shown.output.splitlines()[0] == f"#{number}  SEV-1  acknowledged  Control panel returns 502"
    assert re.search(r"^  incident commander +alice$", shown.output, re.M)
    assert re.search(r"^  due: next status update +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$", shown.output, re.M)
    assert re.search(r"^  public phase +identified$", shown.output, re.M)
    assert "alice (identified): We are rolling back the last deploy." in shown.output
    assert "Public update by alice (identified)" in shown.output
    assert "Timeline:" in shown.output and "Severity SEV-2 -> SEV-1 by alice: all regions" in shown.output

    early = await run_cli("postmortem", str(number), str(postmortem_file(tmp_path)), *url)
    assert early.exit_code == cli.EXIT_REFUSED and "not resolved yet" in early.stderr

    resolved = await run_cli("resolve", str(number), "--summary", "Rolled back; errors stopped.", "--as", "alice",
                             *url)
    assert resolved.exit_code == 0 and "(resolved)" in resolved.output

    thin = await run_cli("postmortem", str(number), str(postmortem_file(tmp_path, root_cause="")), *url)
    assert thin.exit_code == cli.EXIT_REFUSED and "root cause is empty" in thin.stderr.lower()
    done = await run_cli("postmortem", str(number), str(postmortem_file(tmp_path)), "--as", "alice", *url)
    assert done.exit_code == 0, done.stderr
    assert done.output.strip() == f"#{number} (closed): postmortem for #{number} accepted"

    final = json.loads((await run_cli("show", str(number), "--json", *url)).stdout)
    assert final["status"] == "closed"
    assert final["postmortem"]["submitted_by"] == "alice"

    # The postmortem's action item, from the CLI: listed, handed over, a second one added, done.
    for _ in range(50):  # the tracker writes the read model a moment after the postmortem
        listed = await run_cli("action-items", "list", "--incident", str(number), *url)
        if "Add a publish-latency alert" in listed.output:
            break
        await asyncio.sleep(0.2)
    assert re.search(rf"^#{number} +1 +medium +bob +\S+ \S+ +.+ left +Add a publish-latency alert$", listed.output,
                     re.M), listed.output
    moved = await run_cli("action-items", "change", str(number), "1", "--owner", "erin", "--due", "2030-01-31", *url)
    assert moved.exit_code == 0, moved.output
    assert moved.output.startswith(f"action item 1 of #{number}: owner bob -> erin; due ")
    assert "-> 2030-01-31T23:59:59+00:00" in moved.output
    nothing = await run_cli("action-items", "change", str(number), "1", *url)
    assert nothing.exit_code == cli.EXIT_USAGE and "nothing to change" in nothing.output
    added = await run_cli("action-items", "add", str(number), "Canary the publisher", "--owner", "bob",
                          "--due", "2030-02-15", "--priority", "high", *url)
    assert added.exit_code == 0 and added.output.strip() == f"action item 2 of #{number} added for bob", added.output
    done = await run_cli("action-items", "done", str(number), "1", *url)
    assert done.exit_code == 0 and done.output.strip() == f"action item 1 of #{number} is done"
    again = await run_cli("action-items", "done", str(number), "1", *url)
    assert again.exit_code == cli.EXIT_REFUSED and "already done" in again.stderr
    items = json.loads((await run_cli("action-items", "list", "--incident", str(number), "--json", *url)).stdout)
    assert sorted((i["index"], i["owner"], i["state"], i["priority"]) for i in items) == [
        (1, "erin", "done", "medium"), (2, "bob", "open", "high")]


async def test_exit_codes_for_scripts(api: LiveApi, tmp_path: Path) -> None:
    url = ["--api-url", api.url, "--token", api.token]
    missing = await run_cli("show", "987654321", *url)
    assert missing.exit_code == cli.EXIT_NOT_FOUND and "not found" in missing.stderr
    assert (await run_cli("ack", "987654321", "--as", "alice", *url)).exit_code == cli.EXIT_NOT_FOUND

    bad = await run_cli("declare", "Billing down", "-s", "SEV-9", *url)
    assert bad.exit_code == cli.EXIT_USAGE and "severity" in bad.stderr and "HTTP 422" in bad.stderr
    no_file = await run_cli("postmortem", "1", str(tmp_path / "nope.yaml"), *url)
    assert no_file.exit_code == cli.EXIT_USAGE and "cannot read" in no_file.stderr
    not_a_mapping = tmp_path / "list.json"
    not_a_mapping.write_text("[1, 2]")
    assert (await run_cli("postmortem", "1", str(not_a_mapping), *url)).exit_code == cli.EXIT_USAGE
    assert (await run_cli("ack", "1", "--as", "", *url)).exit_code == cli.EXIT_USAGE  # an empty actor is refused (422)
    assert (await run_cli("show", "abc", *url)).exit_code == cli.EXIT_USAGE

    nobody = await run_cli("list", "--api-url", f"http://127.0.0.1:{free_port()}")
    assert nobody.exit_code == cli.EXIT_UNREACHABLE and "cannot reach the warroom API" in nobody.stderr


async def test_the_same_idempotency_key_declares_once(api: LiveApi) -> None:
    args = ["declare", "Mail queue stuck", "-s", "SEV-3", "--idempotency-key", "alert-77", "--json",
            "--api-url", api.url, "--token", api.token]
    first = json.loads((await run_cli(*args)).stdout)
    second = json.loads((await run_cli(*args)).stdout)
    assert first["id"] == second["id"]


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        type(self).seen.append(self.headers.get("Authorization"))
        body = b'{"detail": "that token is not valid"}'
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


async def test_the_token_comes_from_the_settings_or_the_flag() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        from_env = await run_cli("list", env={"WARROOM_API_URL": url, "WARROOM_API_TOKEN": "from-env"})
        from_flag = await run_cli("list", "--token", "from-flag", env={"WARROOM_API_URL": url,
                                                                        "WARROOM_API_TOKEN": "from-env"})
        none = await run_cli("list", "--api-url", url, env={"WARROOM_API_TOKEN": ""})
    finally:
        server.shutdown()
    assert _Recorder.seen == ["Bearer from-env", "Bearer from-flag", None]
    assert from_env.exit_code == from_flag.exit_code == cli.EXIT_FORBIDDEN
    assert "that token is not valid (HTTP 401)" in from_env.stderr
    assert none.exit_code == cli.EXIT_FORBIDDEN


def _all_commands() -> list[list[str]]:
    """Every command and group of the CLI, at any depth (``admin token create``)."""

    def walk(command: object, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(get_command(cli.app), []))


def test_every_command_has_help() -> None:
    paths = _all_commands()
    names = {" ".join(p) for p in paths}
    assert {"declare", "list", "show", "ack", "update", "severity", "role", "resolve", "postmortem", "oncall",
            "db upgrade", "db current", "db revision", "admin token create", "admin integration revoke",
            "runbooks runs", "runbooks show", "runbooks confirm", "runbooks approve", "runbooks abort",
            "statuspage export"} <= names
    for path in paths:
        result = runner.invoke(cli.app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert result.output.startswith(f"Usage: {' '.join(['warroom', *path])} "), path
        assert "--help" in result.output, path
    assert "Exit codes: 0 done; 1 refused" in " ".join(runner.invoke(cli.app, ["--help"]).output.split())


def test_db_upgrade_and_current(database: TestDatabase) -> None:
    url = ["--database-url", database.url]
    empty = runner.invoke(cli.app, ["db", "current", *url])
    assert empty.exit_code == cli.EXIT_REFUSED and "(empty database)" in empty.output
    first = runner.invoke(cli.app, ["db", "upgrade", *url])
    assert first.exit_code == 0, first.output
    assert f"migrated from an empty database to {migrations.head()}" in first.output
    second = runner.invoke(cli.app, ["db", "upgrade", "--json", *url])
    assert json.loads(second.stdout)["before"] == json.loads(second.stdout)["after"] == migrations.head()
    now = runner.invoke(cli.app, ["db", "current", "--json", *url])
    assert now.exit_code == 0 and json.loads(now.stdout)["current"] == migrations.head()


def test_db_upgrade_gives_up_on_an_unreachable_database() -> None:
    result = runner.invoke(
        cli.app,
        ["db", "upgrade", "--database-url", f"postgresql+psycopg://w:pw@127.0.0.1:{free_port()}/w"],
        env={"WARROOM_STARTUP_TIMEOUT_SECONDS": "1"},
    )
    assert result.exit_code == cli.EXIT_UNREACHABLE
    assert "did not answer within 1 s" in result.stderr and ":pw@" not in result.stderr


async def test_the_installed_entry_point(api: LiveApi) -> None:
    """`warroom` as a script: the pyproject entry point, a real process, a real API."""
    exe = Path(sys.executable).parent / "warroom"
    listing = await asyncio.to_thread(
        subprocess.run, [str(exe), "list", "--json", "--api-url", api.url, "--token", api.token], capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout) == []
    missing = await asyncio.to_thread(
        subprocess.run, [str(exe), "show", "424242", "--api-url", api.url, "--token", api.token], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == cli.EXIT_NOT_FOUND


async def test_runbooks_are_listed_run_and_exported_from_the_cli(api: LiveApi, tmp_path: Path) -> None:
    url = ["--api-url", api.url, "--token", api.token]
    listed = await run_cli("runbooks", "list", *url)
    assert listed.exit_code == 0, listed.output
    assert "deployment-rollback" in listed.output and "(destructive)" in listed.output

    declared = await run_cli("declare", "Checkout slow", "-s", "SEV-3", "--json", *url)
    number = json.loads(declared.stdout)["id"]
    unconfirmed = await run_cli("runbooks", "run", str(number), "deployment-rollback", *url)
    assert unconfirmed.exit_code == cli.EXIT_REFUSED, unconfirmed.output
    assert "confirm" in unconfirmed.stderr
    bad = await run_cli("runbooks", "run", str(number), "scale-up", "-p", "replicas", *url)
    assert bad.exit_code == cli.EXIT_USAGE and "NAME=VALUE" in bad.stderr

    exported = await run_cli("runbooks", "export", str(tmp_path / "out"))
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "out" / "deployment-rollback.md").read_text().strip()


# --- on call ---------------------------------------------------------------------------------

ONCALL_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "oncall.yaml"


async def test_oncall_asks_the_api_with_the_token_like_every_command(
    client: Client, primary_database: TestDatabase, primary_engine: Engine, tmp_path: Path
) -> None:
    at = ["--at", "2026-12-09T03:00:00Z"]
    policy = yaml.safe_load(ONCALL_EXAMPLE.read_text(encoding="utf-8"))
    async with live_api(client, primary_database, primary_engine, tmp_path, policy=policy) as api:
        viewer = token_for(api.engine, "vera", Role.VIEWER)  # reading who is on call needs no more
        asked = await run_cli("oncall", *at, "--api-url", api.url, "--token", viewer)
        from_env = await run_cli("oncall", *at, env={"WARROOM_API_URL": api.url, "WARROOM_API_TOKEN": viewer})
        as_json = await run_cli("oncall", *at, "--json", "--api-url", api.url, "--token", viewer)
        no_token = await run_cli("oncall", "--api-url", api.url, env={"WARROOM_API_TOKEN": ""})
        wrong = await run_cli("oncall", "--api-url", api.url, "--token", "wr_not_a_real_token")
    local = await run_cli("oncall", *at, "--policy", str(ONCALL_EXAMPLE))
    nobody = await run_cli("oncall", "--api-url", f"http://127.0.0.1:{free_port()}", "--token", viewer)

    assert asked.exit_code == 0, asked.output
    assert re.fullmatch(r"On call at 2026-12-09 03:00 UTC \(configuration version \d+\)", asked.output.splitlines()[0])
    assert "  platform-primary (Europe/London)\n    now:  bob, Tue 08 Dec 17:30 to Wed 09 Dec 09:00\n" in asked.output
    assert "    next: alice, Wed 09 Dec 09:00 to Wed 09 Dec 17:30\n" in asked.output
    # The API and the file alone agree, line for line, on everything but the stored version.
    assert local.exit_code == 0 and asked.output.splitlines()[1:] == local.output.splitlines()[1:]
    assert from_env.exit_code == 0 and from_env.output == asked.output
    report = json.loads(as_json.stdout)
    primary = next(s for s in report["schedules"] if s["schedule"] == "platform-primary")
    assert (primary["now"]["person"], primary["next"]["person"]) == ("bob", "alice")
    assert isinstance(report["version"], int)

    assert no_token.exit_code == wrong.exit_code == cli.EXIT_FORBIDDEN
    assert no_token.stdout == wrong.stdout == ""
    assert no_token.stderr.startswith("warroom: no credentials") and no_token.stderr.rstrip().endswith(
        "(HTTP 401); no token was given: set WARROOM_API_TOKEN or pass --token")
    assert wrong.stderr.startswith("warroom: ") and "(HTTP 401)" in wrong.stderr
    assert "WARROOM_API_TOKEN" not in wrong.stderr and "wr_not_a_real_token" not in wrong.stderr
    assert nobody.exit_code == cli.EXIT_UNREACHABLE and "cannot reach the warroom API" in nobody.stderr


# --- runbook runs ------------------------------------------------------------------------------

PLATFORM_TOKEN = "cli-test-platform-token"


async def run_state(number: int, run: int, url: list[str], ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """``warroom runbooks show --json`` until the run is as ``ready`` wants (the read model lags a moment)."""
    deadline = time.monotonic() + 20
    while True:
        shown = await run_cli("runbooks", "show", str(number), str(run), "--json", *url)
        if shown.exit_code == 0 and ready(state := json.loads(shown.stdout)):
            return state
        assert time.monotonic() < deadline, shown.output
        await asyncio.sleep(0.1)


def waiting_at(step: int) -> Callable[[dict[str, Any]], bool]:
    return lambda run: run["steps"][step - 1]["status"] == "waiting"


def finished(run: dict[str, Any]) -> bool:
    return run["status"] not in ("running", "waiting")


async def test_runbook_runs_are_followed_and_answered_from_the_cli(
    client: Client, primary_database: TestDatabase, primary_engine: Engine, tmp_path: Path
) -> None:
    """database-failover: an approval step first (a second operator), a manual step last."""
    with running_platform(token=PLATFORM_TOKEN) as platform:
        config = RunbookConfig(endpoints={"platform": platform.url}, secrets={"platform_token": PLATFORM_TOKEN})
        async with live_api(client, primary_database, primary_engine, tmp_path, runbook_config=config) as api:
            alice = ["--api-url", api.url, "--token", api.token]  # an admin
            bob = ["--api-url", api.url, "--token", token_for(api.engine, "bob")]  # an operator
            erin = ["--api-url", api.url, "--token", token_for(api.engine, "erin")]  # a responder
            number = json.loads((await run_cli("declare", "Primary database gone", "-s", "SEV-1", "--json",
                                               *alice)).stdout)["id"]
            n = str(number)
            assert (await run_cli("runbooks", "runs", n, *erin)).output.strip() == f"No runbook runs on #{number}."

            started = await run_cli("runbooks", "run", n, "database-failover", "--confirm-destructive",
                                    "--reason", "primary unreachable", *alice)
            assert started.exit_code == 0, started.output
            await run_state(number, 1, erin, waiting_at(1))

            shown = await run_cli("runbooks", "show", n, "1", *erin)
            assert shown.exit_code == 0, shown.output
            lines = shown.output.splitlines()
            assert lines[0] == f"#{number} run #1  database-failover  waiting  Database failover"
            assert re.search(r"^  started +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ by alice$", shown.output, re.M)
            assert re.search(r"^  reason +primary unreachable$", shown.output, re.M)
            steps = lines[lines.index("") + 1:]
            assert steps[0].split() == ["STEP", "STATUS", "KIND", "NAME", "RESULT"]
            assert steps[1].split()[:3] == ["1", "waiting", "approval"]
            assert steps[3].split()[:4] == ["3", "pending", "http,", "destructive"]
            assert steps[5].split()[:3] == ["5", "pending", "manual"]
            assert steps[6:] == ["", f"Step 1 waits for an operator other than alice: "
                                     f"warroom runbooks approve {number} 1 1 (or --refuse)"]

            listed = await run_cli("runbooks", "runs", n, *erin)
            assert listed.output.splitlines()[0].split() == ["RUN", "RUNBOOK", "STATUS", "STARTED", "BY", "AT",
                                                             "STEP"]
            row = listed.output.splitlines()[1].split()
            assert row[:3] == ["#1", "database-failover", "waiting"] and row[-2:] == ["alice", "1"]

            # Refusals: the API's reason, and an exit code a script can tell apart.
            own = await run_cli("runbooks", "approve", n, "1", "1", *alice)
            assert own.exit_code == cli.EXIT_REFUSED
            assert "a second operator must approve: alice started this run (HTTP 409)" in own.stderr
            responder = await run_cli("runbooks", "approve", n, "1", "1", *erin)
            assert responder.exit_code == cli.EXIT_FORBIDDEN
            assert "needs the operator role" in responder.stderr and "(HTTP 403)" in responder.stderr
            not_manual = await run_cli("runbooks", "confirm", n, "1", "1", *bob)
            assert not_manual.exit_code == cli.EXIT_REFUSED and "not a manual step (HTTP 409)" in not_manual.stderr
            no_step = await run_cli("runbooks", "confirm", n, "1", "9", *bob)
            assert no_step.exit_code == cli.EXIT_REFUSED and "has no step 9 (it has 5)" in no_step.stderr
            too_long = await run_cli("runbooks", "approve", n, "1", "1", "--note", "x" * 5001, *bob)
            assert too_long.exit_code == cli.EXIT_USAGE and "(HTTP 422)" in too_long.stderr
            no_run = await run_cli("runbooks", "show", n, "7", *erin)
            assert no_run.exit_code == cli.EXIT_NOT_FOUND and f"#{number} has no runbook run #7" in no_run.stderr
            zero = await run_cli("runbooks", "confirm", n, "1", "0", *bob)
            assert zero.exit_code == cli.EXIT_USAGE
            assert platform.calls() == [], "nothing ran before the approval"

            approved = await run_cli("runbooks", "approve", n, "1", "1", "--note", "lag is 0.3 s", *bob)
            assert approved.exit_code == 0, approved.output
            assert approved.output.startswith(f"#{number} run #1 (")
            assert approved.output.rstrip().endswith("): step 1 of run #1 approved by bob")
            await run_state(number, 1, erin, waiting_at(5))
            assert platform.state.primary == "db-b"
            shown = await run_cli("runbooks", "show", n, "1", *erin)
            assert shown.output.splitlines()[-1] == (f"Step 5 waits for a person: "
                                                     f"warroom runbooks confirm {number} 1 5 once it is done")
            confirmed = await run_cli("runbooks", "confirm", n, "1", "5", "--note", "standby rebuilt", "--json", *erin)
            assert confirmed.exit_code == 0 and json.loads(confirmed.stdout)["run"] == 1
            run = await run_state(number, 1, erin, finished)
            assert run["status"] == "succeeded" and [s["status"] for s in run["steps"]] == ["succeeded"] * 5
            assert run["steps"][0]["result"] == "approved by bob: lag is 0.3 s"
            assert run["steps"][4]["result"] == "confirmed done by erin: standby rebuilt"

            # Run 2 is refused at its approval step: the run fails there, nothing else runs.
            assert (await run_cli("runbooks", "run", n, "database-failover", "--confirm-destructive",
                                  *alice)).exit_code == 0
            await run_state(number, 2, erin, waiting_at(1))
            refused = await run_cli("runbooks", "approve", n, "2", "1", "--refuse", "--note", "lag is 40 s", *bob)
            assert refused.exit_code == 0 and "step 1 of run #2 refused by bob" in refused.output
            run = await run_state(number, 2, erin, finished)
            assert run["status"] == "failed" and run["steps"][0]["result"] == "refused by bob: lag is 40 s"
            assert [s["status"] for s in run["steps"][1:]] == ["skipped"] * 4

            # Run 3 is aborted by a responder; a second abort is refused.
            assert (await run_cli("runbooks", "run", n, "database-failover", "--confirm-destructive",
                                  *alice)).exit_code == 0
            await run_state(number, 3, erin, waiting_at(1))
            aborted = await run_cli("runbooks", "abort", n, "3", "--reason", "wrong incident", *erin)
            assert aborted.exit_code == 0, aborted.output
            assert aborted.output.strip() == (f"#{number} run #3 (aborted): run #3 of 'Database failover' "
                                              "aborted by erin")
            again = await run_cli("runbooks", "abort", n, "3", *erin)
            assert again.exit_code == cli.EXIT_REFUSED and "has already aborted" in again.stderr
            await run_state(number, 3, erin, lambda run: run["status"] == "aborted")
            shown = await run_cli("runbooks", "show", n, "3", *erin)
            assert re.search(r"^  aborted by +erin$", shown.output, re.M)
            assert re.search(r"^  result +aborted by erin: wrong incident$", shown.output, re.M)

            listed = await run_cli("runbooks", "runs", n, *erin)
            assert [line.split()[:3] for line in listed.output.splitlines()[1:]] == [
                ["#1", "database-failover", "succeeded"], ["#2", "database-failover", "failed"],
                ["#3", "database-failover", "aborted"]]
            assert platform.calls("/database/failover") and len(platform.calls("/database/failover")) == 1


# --- the status page export --------------------------------------------------------------------


def test_statuspage_export_is_a_warroom_command(engine: Engine, database: TestDatabase, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    add_incident(engine, 7, "DNS changes publish slowly", "SEV-2", now - timedelta(minutes=40), ["dns"],
                 [(timedelta(minutes=4), "update", "We are investigating slow DNS publishing.")])
    out = tmp_path / "public"
    done = runner.invoke(cli.app, ["statuspage", "export", str(out), "--database-url", database.url])
    assert done.exit_code == 0, done.output
    assert re.fullmatch(rf"exported \d+ files to {re.escape(str(out))}\n", done.output)
    assert "DNS changes publish slowly" in (out / "index.html").read_text(encoding="utf-8")
    assert "We are investigating slow DNS publishing." in (out / "incidents" / "7.html").read_text(encoding="utf-8")
    assert json.loads((out / "api" / "v2" / "status.json").read_text())["status"]["indicator"] != "none"

    bad = tmp_path / "components.yaml"
    bad.write_text("page: [not, a, mapping]\n", encoding="utf-8")
    refused = runner.invoke(cli.app, ["statuspage", "export", str(tmp_path / "x"), "--database-url", database.url],
                            env={"WARROOM_COMPONENTS": str(bad)})
    assert refused.exit_code == cli.EXIT_USAGE and refused.stderr.startswith("warroom: ")
    zero = runner.invoke(cli.app, ["statuspage", "export", str(out), "--watch", "--interval", "0"])
    assert zero.exit_code == cli.EXIT_USAGE and "must be more than 0 seconds" in zero.stderr
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    unwritable = runner.invoke(cli.app, ["statuspage", "export", str(blocked / "out"), "--database-url", database.url])
    assert unwritable.exit_code == cli.EXIT_USAGE and "cannot write the export" in unwritable.stderr
    assert "Traceback" not in unwritable.output + unwritable.stderr
    nowhere = tmp_path / "none" / "warroom.db"
    missing = runner.invoke(cli.app, ["statuspage", "export", str(out), "--database-url", f"sqlite:///{nowhere}"])
    assert missing.exit_code == cli.EXIT_NOT_FOUND and "there is no read model" in missing.stderr
    assert not nowhere.exists(), "nothing is created where no read model was"


def test_statuspage_export_names_a_database_it_cannot_read(database: TestDatabase, tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(database.url)
    if url.get_backend_name() == "sqlite":  # a file that is there but was never migrated
        Path(str(url.database)).touch()
    result = runner.invoke(cli.app, ["statuspage", "export", str(tmp_path / "out"), "--database-url", database.url])
    assert result.exit_code == cli.EXIT_ERROR
    assert "cannot read the read model at" in result.stderr and "warroom db upgrade" in result.stderr


def test_statuspage_export_watch_keeps_exporting_until_interrupted(
    engine: Engine, database: TestDatabase, tmp_path: Path
) -> None:
    """The installed `warroom` in a process of its own: re-exports on its interval, Ctrl-C ends it cleanly."""
    out, log = tmp_path / "public", tmp_path / "export.log"
    exe = Path(sys.executable).parent / "warroom"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(exe), "statuspage", "export", str(out), "--watch", "--interval", "0.2", "--idle-interval", "0.2",
             "--database-url", database.url], stdout=subprocess.PIPE, stderr=err, text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while log.read_text().count("exported ") < 2:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, log.read_text()
    assert (out / "index.html").exists() and (out / "api" / "v2" / "summary.json").exists()
    assert "Traceback" not in log.read_text()


async def test_reports_are_triaged_from_the_cli(api: LiveApi) -> None:
    import httpx

    url = ["--api-url", api.url, "--token", api.token]
    async with httpx.AsyncClient(base_url=api.url, timeout=20) as anonymous:  # customers need no account
        ids = [(await anonymous.post("/api/reports", json={"text": text, "component": "dns", "contact": contact},
                                     headers={"X-Forwarded-For": f"198.51.100.{i}"})).json()["id"]
               for i, (text, contact) in enumerate([("My domain stopped resolving", "pat@example.com"),
                                                    ("DNS changes do not show up", None),
                                                    ("Do you sell domains?", None)], start=1)]
    waiting = await run_cli("reports", "list", *url)
    assert waiting.exit_code == 0, waiting.output
    assert [int(n) for n in re.findall(r"^#(\d+) ", waiting.output, re.M)] == sorted(ids, reverse=True)
    assert "pat@example.com" in waiting.output

    declared = await run_cli("reports", "declare", str(ids[0]), "-s", "SEV-2", "--title", "DNS resolution failing",
                             "--json", *url)
    assert declared.exit_code == 0, declared.output
    number = json.loads(declared.stdout)["incident_id"]
    attached = await run_cli("reports", "attach", str(ids[1]), str(number), *url)
    assert attached.exit_code == 0 and attached.output.strip() == f"Report #{ids[1]} attached: incident #{number}."
    dismissed = await run_cli("reports", "dismiss", str(ids[2]), "--reason", "a sales question", *url)
    assert dismissed.exit_code == 0 and dismissed.output.strip() == f"Report #{ids[2]} dismissed by alice."
    again = await run_cli("reports", "dismiss", str(ids[2]), *url)
    assert again.exit_code == cli.EXIT_REFUSED and "already dismissed" in again.stderr
    assert (await run_cli("reports", "attach", "2147483647", str(number), *url)).exit_code == cli.EXIT_NOT_FOUND
    assert "No new reports." in (await run_cli("reports", "list", *url)).output
    shown = json.loads((await run_cli("show", str(number), "--json", *url)).stdout)
    assert shown["title"] == "DNS resolution failing"
