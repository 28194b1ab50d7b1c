"""``warroom oncall`` from a policy file, no server (tests/cli has it against a running API)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from warroom import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "oncall.yaml"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, ["oncall", *args])
    return result.exit_code, result.output


def test_oncall_at_an_instant_shows_now_and_next_in_each_schedules_zone() -> None:
    code, out = run("--at", "2026-12-09T03:00:00Z", "--policy", str(EXAMPLE))
    assert code == 0, out
    assert out.splitlines()[0] == "On call at 2026-12-09 03:00 UTC"
    assert "  platform-primary (Europe/London)\n    now:  bob, Tue 08 Dec 17:30 to Wed 09 Dec 09:00\n" in out
    assert "    next: alice, Wed 09 Dec 09:00 to Wed 09 Dec 17:30\n" in out
    assert "    now:  dan, Tue 08 Dec 08:00 to Wed 09 Dec 08:00\n" in out  # New York time
    assert "team platform: outside business hours (Mon-Fri 09:00-17:30 Europe/London); next open Wed 09 Dec 09:00" in out


def test_an_override_is_marked_and_bad_input_is_refused_with_the_reason(tmp_path: Path) -> None:
    code, out = run("--at", "2026-12-10T03:00:00+00:00", "--policy", str(EXAMPLE))
    assert code == 0 and "now:  carol (override), Wed 09 Dec 20:00 to Thu 10 Dec 12:00" in out
    code, out = run("--at", "2026-12-10T03:00:00", "--policy", str(EXAMPLE))
    assert code == 2 and "give a time zone offset" in out
    broken = tmp_path / "broken.yaml"
    broken.write_text(EXAMPLE.read_text().replace("members: [dan, fay]", "members: [dan, zoe]"))
    code, out = run("--policy", str(broken))
    assert code == cli.EXIT_USAGE and "teams.mail.members.1: unknown person 'zoe'" in out
    code, out = run("--policy", str(tmp_path / "missing.yaml"))
    assert code == cli.EXIT_USAGE and "cannot read the policy file" in out


def test_json_from_a_file_has_the_shape_of_the_api_answer() -> None:
    code, out = run("--at", "2026-12-09T03:00:00Z", "--policy", str(EXAMPLE), "--json")
    assert code == 0, out
    report = json.loads(out)
    primary = next(s for s in report["schedules"] if s["schedule"] == "platform-primary")
    assert primary["now"]["person"] == "bob" and primary["next"]["person"] == "alice"
    assert report["at"].startswith("2026-12-09T03:00:00")


def test_the_coming_shifts_follow_and_someone_living_elsewhere_sees_their_own_times(tmp_path: Path) -> None:
    code, out = run("--at", "2026-12-09T03:00:00Z", "--policy", str(EXAMPLE))
    assert code == 0, out
    assert ("    next: alice, Wed 09 Dec 09:00 to Wed 09 Dec 17:30\n"
            "    then: bob, Wed 09 Dec 17:30 to Wed 09 Dec 20:00\n"
            "    then: carol (override), Wed 09 Dec 20:00 to Thu 10 Dec 12:00\n") in out
    abroad = tmp_path / "abroad.yaml"
    abroad.write_text(EXAMPLE.read_text().replace("time_zone: America/New_York}", "time_zone: Asia/Kolkata}", 1))
    code, out = run("--at", "2026-12-09T03:00:00Z", "--policy", str(abroad))
    assert code == 0, out
    # dan (now in Kolkata) on the New York schedule: 08:00 EST is 18:30 IST.
    assert "    now:  dan, Tue 08 Dec 08:00 to Wed 09 Dec 08:00 [Asia/Kolkata: Tue 08 Dec 18:30 to Wed 09 Dec 18:30]\n" in out
