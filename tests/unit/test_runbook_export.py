"""Runbooks exported as static HTML and Markdown, readable without warroom."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from warroom.runbooks import load_catalogue
from warroom.runbooks.__main__ import main
from warroom.runbooks.export import export_runbooks

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def test_export_writes_every_runbook_as_html_and_markdown(tmp_path: Path) -> None:
    catalogue = load_catalogue()
    written = export_runbooks(catalogue, tmp_path / "site", now=NOW)
    names = {p.name for p in written}
    assert names == {"index.html", "index.md"} | {f"{rb.id}{ext}" for rb in catalogue for ext in (".html", ".md")}
    index = (tmp_path / "site" / "index.html").read_text()
    for rb in catalogue:
        assert f'href="{rb.id}.html"' in index
    page = (tmp_path / "site" / "database-failover.html").read_text()
    # Self-contained: readable from a laptop when every other system is down.
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "2026-12-01 09:30 UTC" in page
    markdown = (tmp_path / "site" / "database-failover.md").read_text()
    steps = [rb for rb in catalogue if rb.id == "database-failover"][0].steps
    positions = [markdown.index(f"**{s.name}**") for s in steps]
    assert positions == sorted(positions), "steps keep their order"
    assert "POST /database/failover" in markdown and "**destructive**" in markdown


def test_export_escapes_runbook_text_in_html(tmp_path: Path) -> None:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "odd.yaml").write_text(
        "title: 'Fix <script>alert(1)</script>'\n"
        "when_to_use: 'When a & b'\n"
        "steps:\n  - {name: 'Check <b>', kind: manual, instruction: 'Look at <img src=x>'}\n"
    )
    export_runbooks(load_catalogue(runbooks), tmp_path / "out", now=NOW)
    page = (tmp_path / "out" / "odd.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<img src=x>" not in page and "a &amp; b" in page


def test_the_command_line_exports_and_refuses_a_bad_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "deployment-rollback.md").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "oops.yaml").write_text("title: x\nwhen_to_use: y\nsteps: []\nowner: me\n")
    assert main(["--dir", str(bad), "check"]) == 1
    err = capsys.readouterr().err
    assert "oops.yaml" in err and "owner: unknown key" in err
