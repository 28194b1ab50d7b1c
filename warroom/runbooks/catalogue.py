"""Loading runbooks from a directory of YAML files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from warroom.models.runbook import Runbook, RunbookError, parse_runbook

DEFAULT_RUNBOOKS_DIR = Path(__file__).resolve().parent
"""The runbooks shipped with warroom."""


@dataclass(frozen=True)
class Catalogue:
    """Every runbook of one directory, by id (the file name without ``.yaml``)."""

    directory: Path
    runbooks: dict[str, Runbook]

    def get(self, runbook_id: str) -> Runbook | None:
        return self.runbooks.get(runbook_id)

    def __iter__(self) -> Iterator[Runbook]:
        return iter(self.runbooks.values())

    def __len__(self) -> int:
        return len(self.runbooks)


def load_runbook(path: str | Path) -> Runbook:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunbookError(f"{path}: cannot read the runbook ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RunbookError(f"{path}: not valid YAML ({exc})") from None
    return parse_runbook(data, path.stem, str(path))


def load_catalogue(directory: str | Path | None = None) -> Catalogue:
    """All runbooks of ``directory`` (default: the shipped ones), sorted by title.

    One bad file stops the load: a runbook that cannot be trusted should be fixed
    in review, not discovered in the middle of an outage."""
    root = Path(directory) if directory is not None else DEFAULT_RUNBOOKS_DIR
    if not root.is_dir():
        raise RunbookError(f"{root}: not a directory of runbooks")
    files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    runbooks: dict[str, Runbook] = {}
    for path in files:
        runbook = load_runbook(path)
        if runbook.id in runbooks:
            raise RunbookError(f"{path}: a runbook with id '{runbook.id}' is already defined")
        runbooks[runbook.id] = runbook
    ordered = dict(sorted(runbooks.items(), key=lambda item: item[1].title.lower()))
    return Catalogue(directory=root, runbooks=ordered)
