"""Containers that start together migrate a database once: the entry point's lock, on a real
MariaDB server, with the real `python -m nnote.boot` processes a task would run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import create_engine, inspect

from tests.support.mariadb import MariaDB

MIGRATIONS = sorted((Path(__file__).parents[2] / "nnote/migrations/versions").glob("0*.py"))
SECRET = "x" * 48


@pytest.fixture
def database(mariadb: MariaDB) -> Iterator[str]:
    name = f"nnote_boot_{os.getpid()}_{time.monotonic_ns()}"[:60]
    mariadb.create_database(name, "nnote", "nnote-test-pw")
    yield mariadb.url(name, "nnote", "nnote-test-pw")
    mariadb.drop_database(name)


def boot(url: str, **env: str) -> subprocess.Popen[str]:
    """The entry point as a task starts it (without a command: it exits after migrating)."""
    return subprocess.Popen(
        [sys.executable, "-m", "nnote.boot"],
        env={**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def held_lock(mariadb: MariaDB) -> pymysql.Connection:  # type: ignore[type-arg]
    """The migration lock taken as another task would hold it."""
    holder = mariadb.admin()
    with holder.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK('nnote-migrate', 0)")
        assert cursor.fetchone() == (1,)
    return holder


def wait_for_line(process: subprocess.Popen[str], words: str) -> str:
    seen = ""
    assert process.stdout is not None
    for line in process.stdout:
        seen += line
        if words in line:
            return seen
    raise AssertionError(f"{words!r} never said; output:\n{seen}")


@pytest.mark.mariadb
def test_two_tasks_starting_together_migrate_once(mariadb: MariaDB, database: str) -> None:
    holder = held_lock(mariadb)  # both start while the lock is taken: both must wait
    first, second = boot(database), boot(database)
    said = [wait_for_line(p, "another task is migrating the database") for p in (first, second)]
    holder.close()  # the holder goes away: the server releases its lock
    outputs = [
        seen + p.communicate(timeout=120)[0] for seen, p in zip(said, (first, second), strict=True)
    ]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    runs = sum(text.count("Running upgrade") for text in outputs)
    assert runs == len(MIGRATIONS), outputs  # each migration once, by one of them
    assert any("Running upgrade" not in text for text in outputs), "the other found none to run"
    tables = set(inspect(create_engine(database)).get_table_names())
    assert {"user", "note", "alembic_version"} <= tables


@pytest.mark.mariadb
def test_a_lock_never_released_stops_the_task_with_a_reason(
    mariadb: MariaDB, database: str
) -> None:
    holder = held_lock(mariadb)
    try:
        done = boot(database, NNOTE_MIGRATION_LOCK_SECONDS="1")
        output = done.communicate(timeout=120)[0]
    finally:
        holder.close()
    assert done.returncode == 4
    assert "cannot start: the migration lock was not free within 1s" in output
    assert "alembic_version" not in inspect(create_engine(database)).get_table_names()


def test_a_task_told_not_to_migrate_leaves_the_schema_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nnote.sqlite'}"
    done = boot(url, NNOTE_MIGRATE="0")
    output = done.communicate(timeout=120)[0]
    assert done.returncode == 0, output
    assert "not migrating (NNOTE_MIGRATE=0)" in output
    assert inspect(create_engine(url)).get_table_names() == []


def test_sqlite_migrates_without_a_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nnote.sqlite'}"
    done = boot(url)
    output = done.communicate(timeout=120)[0]
    assert done.returncode == 0, output
    assert "another task" not in output
    assert "alembic_version" in inspect(create_engine(url)).get_table_names()


def test_older_code_on_a_database_a_later_release_migrated_starts_without_migrating(
    tmp_path: Path,
) -> None:
    """A rollback runs code whose migrations stop before the database's revision: Alembic
    would fail on the revision it cannot find; the entry point leaves the schema alone."""
    url = f"sqlite:///{tmp_path / 'notes.db'}"
    first = boot(url)
    assert first.wait(timeout=60) == 0
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0099_later'")
    again = boot(url)
    output, _ = again.communicate(timeout=60)
    assert again.returncode == 0, output
    assert "the database is at 0099_later, newer than this code's migrations" in output
    with engine.connect() as connection:
        version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert version == "0099_later"
