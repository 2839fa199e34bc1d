"""Liveness and readiness endpoints for the container, the load balancer and ECS."""

from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from nnote.models import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    """The process answers; says nothing about the database (a DB outage must not kill tasks)."""
    return {"status": "ok"}, 200


@bp.get("/readyz")
def readyz() -> tuple[dict[str, str], int]:
    """The app can serve: the database answers a trivial query."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        db.session.rollback()
        # The exception type only: driver messages can carry host names and user names.
        current_app.logger.warning("readiness check failed: %s", type(error).__name__)
        return {"status": "unavailable", "reason": "database unreachable"}, 503
    return {"status": "ready"}, 200
