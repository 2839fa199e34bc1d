"""nnote: a small note-taking app.

`create_app` builds the app in three layers: built-in defaults, then the environment
(see `nnote.settings`), then `test_config` overrides, so tests never depend on the
machine's environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: `python -m nnote.boot` checks for Flask first
    from flask import Flask


def create_app(test_config: Mapping[str, Any] | None = None, *, migrations: bool = True) -> Flask:
    """Create and configure an instance of the nnote app.

    `migrations=False` leaves out the `flask db` commands (Alembic): gunicorn workers,
    which never migrate, start lighter (see `nnote.wsgi`).
    """
    from flask import Flask

    from nnote import settings

    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(settings.defaults(app.instance_path))
    if test_config is None:
        app.config.from_mapping(settings.from_environment(os.environ, app.instance_path))
    else:
        app.config.from_mapping(test_config)
    settings.ensure_secret_key(app)

    _init_extensions(app, migrations)
    _register_blueprints(app)
    return app


def _init_extensions(app: Flask, migrations: bool) -> None:
    from nnote import links, models, security, static_files

    models.init_app(app, migrations)
    security.init_app(app)
    links.init_app(app)
    static_files.init_app(app)


def _register_blueprints(app: Flask) -> None:
    from nnote import account, auth, errors, export, health, notes, trash

    app.register_blueprint(auth.bp)
    app.register_blueprint(notes.bp)
    app.register_blueprint(trash.bp)
    app.register_blueprint(export.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(health.bp)
    errors.init_app(app)
