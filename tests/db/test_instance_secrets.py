"""One status-page link secret for the whole installation, kept in the database.

The API and the workers may each run in a container of their own, with nothing
in common but the database: they must still sign and check links with the
same secret, however they start together."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import ROOT, TestDatabase
from warroom import migrations
from warroom.models.tables import InstanceSecretRow
from warroom.settings import Settings
from warroom.statuspage.config import LEGACY_SECRET_FILE, STATUSPAGE_SECRET_NAME, load_secret


def stored(database: TestDatabase) -> list[str]:
    with Session(database.engine()) as session:
        return list(session.scalars(select(InstanceSecretRow.value).where(InstanceSecretRow.name == STATUSPAGE_SECRET_NAME)))


def settings(database: TestDatabase, data_dir: Path, **extra: object) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, database_url=database.url, **extra)  # type: ignore[arg-type]


def test_engines_starting_together_agree_on_one_secret(database: TestDatabase, tmp_path: Path) -> None:
    migrations.upgrade(database.engine())
    count = 6
    engines = [database.engine() for _ in range(count)]
    barrier = threading.Barrier(count)
    got: list[str] = []
    errors: list[BaseException] = []

    def start(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            got.append(load_secret(settings(database, tmp_path / f"process-{i}"), engines[i]))
        except BaseException as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(got) == count and len(set(got)) == 1
    assert stored(database) == got[:1]
    assert len(got[0]) >= 40  # 32 random bytes, URL-safe base64
    assert not any((tmp_path / f"process-{i}" / LEGACY_SECRET_FILE).exists() for i in range(count))
    # A restart reads the same secret.
    assert load_secret(settings(database, tmp_path / "restarted"), database.engine()) == got[0]


PROCESS = """
import json, sys, time
from warroom.models.tables import make_engine
from warroom.settings import Settings
from warroom.statuspage.config import load_secret
start_at = float(sys.argv[3])
engine = make_engine(sys.argv[1])
with engine.connect():  # connected before the common start
    pass
time.sleep(max(0.0, start_at - time.time()))
print(json.dumps(load_secret(Settings(_env_file=None, data_dir=sys.argv[2], database_url=sys.argv[1]), engine)))
"""


def test_two_processes_starting_together_agree_on_one_secret(database: TestDatabase, tmp_path: Path) -> None:
    """Real processes, as in a cluster: the API and a worker, each with its own data directory."""
    migrations.upgrade(database.engine())
    start_at = time.time() + 3.0  # both have imported warroom by then
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS, database.url, str(tmp_path / name), str(start_at)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
        )
        for name in ("api", "worker")
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    assert outputs[0] == outputs[1]
    assert stored(database) == outputs[:1]


def test_a_configured_secret_wins_and_nothing_is_stored(database: TestDatabase, tmp_path: Path) -> None:
    migrations.upgrade(database.engine())
    got = load_secret(settings(database, tmp_path, statuspage_secret="from-the-environment"), database.engine())
    assert got == "from-the-environment"
    assert stored(database) == []


def test_an_older_installs_secret_file_is_imported_once(
    database: TestDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Links sent before the upgrade were signed with the file's secret: they keep working."""
    migrations.upgrade(database.engine())
    old = tmp_path / "old-install"
    old.mkdir()
    (old / LEGACY_SECRET_FILE).write_text("the-secret-the-old-version-made\n")
    caplog.set_level(logging.INFO, logger="warroom.statuspage")

    assert load_secret(settings(database, old), database.engine()) == "the-secret-the-old-version-made"
    assert stored(database) == ["the-secret-the-old-version-made"]
    assert f"imported from {old / LEGACY_SECRET_FILE}" in caplog.text
    # Another process, with a data directory of its own, gets the same one.
    assert load_secret(settings(database, tmp_path / "new-worker"), database.engine()) == "the-secret-the-old-version-made"

    # A file that disagrees once the database has a secret changes nothing, and says so (without the secret).
    other = tmp_path / "stray"
    other.mkdir()
    (other / LEGACY_SECRET_FILE).write_text("a-different-secret")
    caplog.clear()
    assert load_secret(settings(database, other), database.engine()) == "the-secret-the-old-version-made"
    assert "holds another status page link secret" in caplog.text
    assert "a-different-secret" not in caplog.text and "the-secret-the-old-version-made" not in caplog.text
    assert stored(database) == ["the-secret-the-old-version-made"]


def test_an_empty_or_unreadable_file_is_not_imported(database: TestDatabase, tmp_path: Path) -> None:
    migrations.upgrade(database.engine())
    (tmp_path / LEGACY_SECRET_FILE).write_text("  \n")
    got = load_secret(settings(database, tmp_path), database.engine())
    assert got.strip() and stored(database) == [got]
