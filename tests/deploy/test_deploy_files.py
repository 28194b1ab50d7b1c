"""docker-compose.yml and the Dockerfile, checked without Docker (it cannot run here).

The compose file is parsed and its variables interpolated the way compose does
(``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``); every WARROOM_*
variable it sets must be a setting warroom reads, with a value the settings
accept; images are pinned; long-running services have health checks; the
worker can be scaled; and no secret is written in the file.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values
from sqlalchemy import make_url
from typer.testing import CliRunner

from warroom import cli
from warroom.api.app import create_app
from warroom.models.runbook import ShellStep
from warroom.runbooks import load_catalogue
from warroom.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
SETTINGS_ENV = {f"WARROOM_{name.upper()}" for name in Settings.model_fields}
ONE_SHOT = {name for name, svc in SERVICES.items() if str(svc.get("restart", "")).startswith("on-failure")}
LONG_RUNNING = set(SERVICES) - ONE_SHOT
SAMPLE_ENV = {"POSTGRES_PASSWORD": "sample-password"}

_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?|-|\?)(?P<arg>[^}]*))?\}")


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution, for the forms this project uses."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = env.get(name)
        if op in (":?", "?") and not value:
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and not value:
            return arg
        return value or ""

    return _VAR.sub(one, text)


def environment(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    raw = SERVICES[service].get("environment") or {}
    assert isinstance(raw, dict), f"{service}: write environment as a mapping"
    return {k: interpolate(str(v), SAMPLE_ENV if env is None else env) for k, v in raw.items()}


def test_the_stack_has_every_part() -> None:
    assert {"postgresql", "temporal", "temporal-ui", "api", "worker", "migrate"} <= set(SERVICES)
    assert ONE_SHOT == {"temporal-schema", "temporal-namespace", "migrate"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_images_are_pinned(service: str) -> None:
    image = interpolate(SERVICES[service]["image"], {})
    name, _, tag = image.partition("@")[0].rpartition(":")
    assert name and tag, f"{service}: {image} has no tag"
    assert "@sha256:" in image or re.fullmatch(r"\d+(\.\d+)+([-.][a-z0-9]+)*", tag), f"{service}: pin {image}"
    assert tag != "latest"


def test_the_warroom_image_tag_is_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for service in ("migrate", "api", "worker"):
        assert interpolate(SERVICES[service]["image"], {}) == f"warroom:{version}"
        assert SERVICES[service]["build"] == "."


def test_every_warroom_variable_is_a_setting() -> None:
    named = {key for svc in SERVICES for key in environment(svc) if key.startswith("WARROOM_")}
    named |= set(re.findall(r"\b(WARROOM_[A-Z0-9_]+)=", DOCKERFILE))
    assert named, "the compose file configures warroom through WARROOM_* variables"
    assert named - SETTINGS_ENV == set()
    # ...and in the example env file, commented out or not, and anywhere in the compose file's text.
    text_names = set(re.findall(r"\b(WARROOM_[A-Z0-9_]+)\b", (ROOT / "docker-compose.yml").read_text()))
    text_names -= {"WARROOM_VERSION", "WARROOM_DB"}  # compose's own knobs (image tag, database name), not settings
    assert set(EXAMPLE) - SETTINGS_ENV == set()
    assert text_names - SETTINGS_ENV == set()


# --- warroom.env: every other setting, without editing the compose file ----------------------

EXAMPLE_TEXT = (ROOT / "warroom.env.example").read_text(encoding="utf-8")
_EXAMPLE_LINE = re.compile(r"^#[ ]?(WARROOM_[A-Z0-9_]+=.*)$", re.M)
EXAMPLE: dict[str, str] = {
    key: value or ""
    for key, value in dotenv_values(stream=io.StringIO("\n".join(_EXAMPLE_LINE.findall(EXAMPLE_TEXT)))).items()
}
"""The example's settings, as compose would read them once uncommented (single quotes: literal)."""
WARROOM_SERVICES = ("migrate", "api", "worker")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_warroom_services_read_the_optional_env_file_and_nothing_else_does(service: str) -> None:
    env_file = SERVICES[service].get("env_file")
    if service in WARROOM_SERVICES:
        # Optional: without warroom.env the stack starts as before (Compose 2.24+ reads `required`).
        assert env_file == [{"path": "./warroom.env", "required": False}], service
    else:  # PostgreSQL and Temporal get no Twilio, SendGrid or Slack credentials
        assert env_file is None, service


def test_the_example_changes_nothing_until_edited() -> None:
    for line in EXAMPLE_TEXT.splitlines():
        assert not line.strip() or line.startswith("#"), f"an active line in warroom.env.example: {line!r}"
    assert len(EXAMPLE) == len(_EXAMPLE_LINE.findall(EXAMPLE_TEXT)), "a setting is listed twice"


def test_the_example_covers_every_setting_the_compose_file_leaves_open() -> None:
    set_elsewhere = {key for svc in WARROOM_SERVICES for key in environment(svc)}
    set_elsewhere |= set(re.findall(r"\b(WARROOM_[A-Z0-9_]+)=", DOCKERFILE))
    not_for_compose = {"WARROOM_TEMPORAL_PORT"}  # the embedded dev server's; compose names WARROOM_TEMPORAL_ADDRESS
    missing = SETTINGS_ENV - set_elsewhere - not_for_compose - set(EXAMPLE)
    assert missing == set(), f"document these in warroom.env.example: {sorted(missing)}"
    for wanted in ("WARROOM_PUBLIC_BASE_URL", "WARROOM_TWILIO_AUTH_TOKEN", "WARROOM_SENDGRID_API_KEY",
                   "WARROOM_SLACK_BOT_TOKEN", "WARROOM_RUNBOOK_ENDPOINTS", "WARROOM_RUNBOOK_SECRETS",
                   "WARROOM_COMPONENTS", "WARROOM_API_TOKEN"):
        assert wanted in EXAMPLE


def test_the_example_sets_nothing_the_compose_file_would_override() -> None:
    """A service's ``environment:`` wins over its env_file: such a line would be ignored silently."""
    for service in WARROOM_SERVICES:
        assert set(EXAMPLE) & set(environment(service)) == set(), service


def test_the_examples_values_are_settings_warroom_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("WARROOM_")]:
        monkeypatch.delenv(key)
    for key, value in {**environment("api"), **EXAMPLE}.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.public_base_url == "https://warroom.example.com"
    assert settings.runbook_endpoints == {"platform": "https://ops.example.com"}
    assert set(settings.runbook_secrets) == {"platform_token"}
    assert [w.name for w in settings.webhooks] == ["ops-bus"]
    assert settings.slack_users == {"alice": "U0123ALICE", "bob": "U0123BOB"}
    assert str(settings.components) == "/etc/warroom/statuspage.yaml"


def test_the_example_holds_no_secret() -> None:
    for key, value in EXAMPLE.items():
        if re.search(r"(TOKEN|SECRETS?|KEY|PASSWORD)$", key) or key == "WARROOM_WEBHOOKS":
            assert value == "" or "replace-with" in value, f"{key} in warroom.env.example looks like a real secret"
    assert not re.search(r"\b(SG\.[\w-]{20,}|xox[bp]-\w|wri?_\w{10,}|AC[0-9a-f]{32})", EXAMPLE_TEXT)


def test_the_env_files_are_never_committed_nor_sent_to_docker() -> None:
    for ignore in (".gitignore", ".dockerignore"):
        lines = (ROOT / ignore).read_text().split()
        assert ".env" in lines and "warroom.env" in lines, ignore


@pytest.mark.parametrize("service", ["migrate", "api", "worker"])
def test_each_warroom_service_gets_settings_it_can_use(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("WARROOM_")]:
        monkeypatch.delenv(key)
    for key, value in environment(service).items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    url = make_url(settings.read_model_url)
    assert (url.drivername, url.host, url.password) == ("postgresql+psycopg", "postgresql", "sample-password")
    assert settings.temporal_target == "temporal:7233"
    assert settings.auto_migrate is False  # only `migrate` changes the schema
    assert settings.log_format == "json"
    if service == "api":
        assert (settings.http_host, settings.http_port) == ("0.0.0.0", 8000)
    if service == "worker":
        assert settings.health_file is not None


def test_secrets_are_required_from_the_environment_never_written() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "sample-password" not in text
    for service in SERVICES:
        for key, value in (SERVICES[service].get("environment") or {}).items():
            value = str(value)
            if re.search(r"PASSWORD|PWD|SECRET|TOKEN", key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value), f"{service}.{key} must be ${{VAR:?...}}"
        for key, value in environment(service).items():
            if "://" in value and "@" in value:  # a URL with credentials: its password is the variable's
                assert make_url(value).password == SAMPLE_ENV["POSTGRES_PASSWORD"], f"{service}.{key}"
        if "POSTGRES_PASSWORD" in str(SERVICES[service].get("environment")):
            with pytest.raises(MissingVariable):  # compose refuses to start without it
                environment(service, env={})


@pytest.mark.parametrize("service", sorted(LONG_RUNNING))
def test_long_running_services_have_health_checks(service: str) -> None:
    check = SERVICES[service].get("healthcheck")
    assert check and check["test"][0] in ("CMD", "CMD-SHELL"), service
    assert SERVICES[service].get("restart") == "unless-stopped"


def test_dependencies_wait_for_health_or_completion() -> None:
    for name, svc in SERVICES.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            want = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert spec["condition"] == want, f"{name} -> {dep}"


def test_the_worker_scales_and_nothing_is_pinned_to_one_container() -> None:
    assert all("container_name" not in svc for svc in SERVICES.values())
    worker = SERVICES["worker"]
    assert "ports" not in worker and "expose" not in worker
    assert worker.get("stop_grace_period")  # time to finish the sends in flight on a scale-down
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            assert interpolate(str(port), {}).startswith("127.0.0.1:"), f"{name} publishes on every interface"


def test_commands_name_modules_and_cli_commands_that_exist(tmp_path: Path) -> None:
    for name in ("migrate", "api", "worker"):
        command = SERVICES[name]["command"]
        if command[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(command[2]) is not None, name
        else:
            assert command[0] == "warroom"
            assert CliRunner().invoke(cli.app, [*command[1:], "--help"]).exit_code == 0, name
    assert SERVICES["worker"]["healthcheck"]["test"][1:] == ["python", "-m", "warroom.worker", "--healthcheck"]
    assert "http://127.0.0.1:8000/healthz" in " ".join(SERVICES["api"]["healthcheck"]["test"])
    app = create_app(Settings(data_dir=tmp_path))
    assert "/healthz" in {getattr(route, "path", None) for route in app.routes}


def test_mounted_files_exist_and_scripts_parse() -> None:
    for name, svc in SERVICES.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    for script in (ROOT / "deploy" / "temporal").glob("*.sh"):
        subprocess.run(["sh", "-n", str(script)], check=True)
    dynamic = SERVICES["temporal"]["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    assert (ROOT / "deploy/temporal/dynamicconfig" / Path(dynamic).name).exists()
    for entry in (SERVICES["temporal-schema"]["entrypoint"], SERVICES["temporal-namespace"]["entrypoint"]):
        assert (ROOT / "deploy/temporal" / Path(entry[-1]).name).exists()


def test_dockerfile_pins_its_base_and_runs_as_a_user() -> None:
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.M)
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", b) for b in bases), bases
    final_stage = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    users = re.findall(r"^USER\s+(\S+)", final_stage, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    for source in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", DOCKERFILE, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    cmd = re.findall(r"^CMD\s+(\[.*\])$", DOCKERFILE, re.M)[-1]
    module = yaml.safe_load(cmd)[2]
    assert importlib.util.find_spec(module) is not None
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


PACKAGE_OF_PROGRAM = {"openssl": "openssl"}
"""The Debian package that provides each program a shipped runbook runs in a shell step."""


def _apt_installed(stage: str) -> set[str]:
    packages: set[str] = set()
    for run in re.findall(r"^RUN\s+((?:.*\\\n)*.*)$", stage, re.M):
        for command in run.replace("\\\n", " ").split("&&"):
            words = command.split()
            if words[:2] == ["apt-get", "install"]:
                packages |= {w for w in words[2:] if not w.startswith("-")}
    return packages


def test_the_image_installs_every_program_the_shipped_runbooks_run() -> None:
    """A shell step whose program is missing fails with "program not found on the worker"
    in the middle of an incident; the slim base image has almost nothing."""
    programs = {step.argv[0] for rb in load_catalogue() for step in rb.steps if isinstance(step, ShellStep)}
    assert programs, "no shipped runbook runs a program: drop this test and the apt-get line"
    unknown = programs - set(PACKAGE_OF_PROGRAM)
    assert not unknown, f"say which Debian package provides {sorted(unknown)} and install it in the Dockerfile"
    final_stage = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    missing = {PACKAGE_OF_PROGRAM[p] for p in programs} - _apt_installed(final_stage)
    assert not missing, f"the Dockerfile's last stage does not install {sorted(missing)}"
    # The certificate runbook verifies against the system's CA list by default.
    assert "ca-certificates" in _apt_installed(final_stage)
    default = load_catalogue().runbooks["certificate-expiry-recovery"].parameters["ca_bundle"].default
    assert default == "/etc/ssl/certs/ca-certificates.crt"


_CLI_RUN = re.compile(r"docker compose run (?P<options>(?:(?:--rm|-T|-e \S+) )*)migrate warroom (?P<command>[a-z][a-z -]*)")


def test_documented_cli_runs_in_the_stack_carry_a_token_when_they_call_the_api() -> None:
    """`docker compose run --rm migrate warroom list` calls the API: without a token it is a 401."""
    runs = [(name, match) for name in ("README.md", "docker-compose.yml")
            for match in _CLI_RUN.finditer((ROOT / name).read_text())]
    assert len(runs) >= 4
    for name, match in runs:
        words = match["command"].split()
        direct = words[0] in ("admin", "db")  # these open the database, not the API
        assert direct or "WARROOM_API_TOKEN=" in match["options"], f"{name}: {match[0]!r} has no token"
        command = [w for w in words if not w.startswith("-")][: 3 if words[:2] == ["admin", "token"] else 2 if direct else 1]
        assert CliRunner().invoke(cli.app, [*command, "--help"]).exit_code == 0, f"{name}: no command warroom {command}"
