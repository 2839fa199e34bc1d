"""Container entry point: check settings, wait for the database (bounded), migrate, exec.

`python -m nnote.boot gunicorn --config gunicorn.conf.py` is the image's command. A bad
setting fails at once; only an unreachable database is retried, DB_WAIT_ATTEMPTS times,
DB_WAIT_SECONDS apart. `exec` hands PID 1 to gunicorn so SIGTERM from ECS reaches it.

Tasks that start together (a service of two, a scale-out during a deploy) would migrate the
same database at the same moment: on MySQL the upgrade runs under a database-level lock
(GET_LOCK, held by one connection for the upgrade's length), so one task migrates and the
others wait, then find nothing to do. SQLite is one file on one machine: it needs none.
NNOTE_MIGRATE=0 starts without migrating at all (a task whose schema someone else applies).
Older code on a database a later release migrated (a rollback) starts without migrating.
Installed without the app extra (`nnote` alone, or `nnote[deploy]`), it says which modules
are missing and exits 1, before importing any of them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.engine import Engine

EXIT_DEPENDENCIES = 1
EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_LOCK = 4
# The app extra's top-level modules (pyproject.toml, [project.optional-dependencies]).
DEPENDENCIES = (
    "flask",
    "flask_login",
    "flask_migrate",
    "flask_sqlalchemy",
    "flask_wtf",
    "sqlalchemy",
    "pymysql",
    "gunicorn",
    "markdown_it",
    "mdit_py_plugins",
    "nh3",
    "linkify_it",
)


def log(message: str) -> None:
    print(f"nnote: {message}", file=sys.stderr, flush=True)


def missing_dependencies() -> list[str]:
    """The app extra's modules that are not installed, found without importing them."""
    return [name for name in DEPENDENCIES if importlib.util.find_spec(name) is None]


def wait_for_database(app: Flask, attempts: int, delay: float) -> bool:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from nnote.models import db

    with app.app_context():
        for attempt in range(1, attempts + 1):
            try:
                db.session.execute(text("SELECT 1"))
                return True
            except OperationalError as error:
                # The driver's error code only: messages can name hosts and users.
                code = error.orig.args[0] if error.orig and error.orig.args else "?"
                log(f"database not ready (attempt {attempt}/{attempts}, error {code})")
                db.session.rollback()
                db.engine.dispose()
                if attempt < attempts:
                    time.sleep(delay)
    return False


MIGRATION_LOCK = "nnote-migrate"


class MigrationLockTimeout(RuntimeError):
    pass


def migrate(app: Flask) -> None:
    from flask_migrate import upgrade

    from nnote.models import db

    if os.environ.get("NNOTE_MIGRATE", "1") == "0":
        log("not migrating (NNOTE_MIGRATE=0)")
        return
    with app.app_context(), migration_lock(db.engine):
        newer = unknown_revision(app)
        if newer:
            # Older code on a database a later release migrated (a rollback): Alembic would
            # stop at the revision it cannot find. The schema stays as it is.
            log(f"the database is at {newer}, newer than this code's migrations; not migrating")
            return
        upgrade()


def unknown_revision(app: Flask) -> str | None:
    """The database's revision when this code's migrations do not know it, else None."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from nnote.models import db

    scripts = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        return None
    try:
        scripts.get_revision(current)
    except CommandError:
        return current
    return None


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """One migration at a time per database (MySQL's GET_LOCK; SQLite needs none). The lock
    belongs to this connection's session: released when the upgrade ends, or by the server
    if the task dies."""
    if engine.dialect.name != "mysql":
        yield
        return
    from sqlalchemy import text

    wait = int(os.environ.get("NNOTE_MIGRATION_LOCK_SECONDS", "600"))
    with engine.connect() as connection:
        lock = text("SELECT GET_LOCK(:name, :wait)")
        if connection.execute(lock, {"name": MIGRATION_LOCK, "wait": 0}).scalar() != 1:
            log("another task is migrating the database; waiting for it")
            if connection.execute(lock, {"name": MIGRATION_LOCK, "wait": wait}).scalar() != 1:
                raise MigrationLockTimeout(f"the migration lock was not free within {wait}s")
            log("the other task's migration is done")
        try:
            yield
        finally:
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": MIGRATION_LOCK})


def main(command: list[str]) -> int:
    absent = missing_dependencies()
    if absent:
        log(f"cannot start: the app extra is not installed (missing: {', '.join(absent)})")
        log("hint: pip install 'nnote[app]' (in a clone: uv sync --frozen --extra app)")
        return EXIT_DEPENDENCIES

    from nnote import create_app
    from nnote.settings import ConfigurationError

    try:
        app = create_app()
    except ConfigurationError as error:
        log(f"cannot start: {error}")
        return EXIT_CONFIG
    attempts = int(os.environ.get("DB_WAIT_ATTEMPTS", "30"))
    if not wait_for_database(app, attempts, float(os.environ.get("DB_WAIT_SECONDS", "2"))):
        log(f"database not reachable after {attempts} attempts; giving up")
        return EXIT_DATABASE
    try:
        migrate(app)
    except MigrationLockTimeout as error:
        log(f"cannot start: {error}")
        return EXIT_LOCK
    if command:
        os.execvp(command[0], command)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
