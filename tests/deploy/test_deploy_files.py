"""docker-compose.yml and the Dockerfile, checked without Docker (it cannot run here).

The compose file is parsed and its variables interpolated the way compose does
(``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``); every WARROOM_*
variable it sets must be a setting warroom reads, with a value the settings
accept; images are pinned; long-running services have health checks; the
worker can be scaled; and no secret is written in the file.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import make_url
from typer.testing import CliRunner

from warroom import cli
from warroom.api.app import create_app
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
