"""The design card's arrows, checked: api and worker -> workflows -> models; activities -> models.

Walks the import statements of every module (static, no execution) so a stray
import fails here rather than as a non-deterministic workflow in production.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "warroom"


def modules() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        imports: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imports.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imports.add(node.module)
        found[name] = imports
    return found


MODULES = modules()


def offenders(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for name, imports in sorted(MODULES.items()):
        if name == prefix or name.startswith(prefix + "."):
            for imp in sorted(imports):
                if any(imp == f or imp.startswith(f + ".") for f in forbidden):
                    bad.append(f"{name} imports {imp}")
    return bad


PROVIDERS = ("twilio", "sendgrid", "slack_sdk", "httpx", "requests", "sqlalchemy", "psycopg", "alembic")


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        # Workflows: deterministic orchestration only.
        ("warroom.workflows", (*PROVIDERS, "warroom.settings", "warroom.activities", "warroom.api",
                               "warroom.models.tables", "warroom.runbooks.steps", "socket", "random", "time")),
        # Models: the domain; it knows nothing of the processes around it.
        ("warroom.models", ("warroom.api", "warroom.activities", "warroom.workflows", "warroom.worker",
                            "warroom.settings", "twilio", "sendgrid", "httpx", "fastapi")),
        # Activities touch the world but never the HTTP layer or workflow code.
        ("warroom.activities", ("warroom.api", "warroom.workflows", "fastapi")),
    ],
)
def test_layer_imports_only_what_the_design_allows(layer: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(layer, forbidden) == []


def test_nothing_imports_the_api_package_except_the_api_itself_and_entry_points() -> None:
    allowed = ("warroom.api", "warroom.cli", "warroom.run")
    bad = [
        f"{name} imports {imp}"
        for name, imports in MODULES.items()
        if not name.startswith(allowed)
        for imp in imports
        if imp == "warroom.api" or imp.startswith("warroom.api.")
    ]
    assert bad == []


def test_the_walk_sees_the_modules_it_guards() -> None:
    # Guards the guard: an empty walk would pass every check above.
    assert "warroom.workflows.incident" in MODULES
    assert "temporalio.workflow" in MODULES["warroom.workflows.incident"] or "temporalio" in MODULES[
        "warroom.workflows.incident"
    ]
