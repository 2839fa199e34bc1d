"""The one query every logged-in page makes, run on the driver's cursor.

SQLAlchemy's execution and result layers cost the session-user query about 19 of its 23 µs
on SQLite: a tenth of the whole home page. A `PlainRead` compiles its select once per
dialect, as SQLAlchemy would, runs the string on the request's connection's DB-API cursor
and names the row's fields after the select's columns. It fits selects whose columns need no
conversion by SQLAlchemy (integers and strings; a boolean arrives as the database's 0 or 1).

It keeps what callers rely on from `Connection.execute`: the connection's transaction is
begun (so that its `rollback()` ends the database's snapshot, as the home page needs after a
sweep), a driver error is raised as SQLAlchemy's (the 503 page handles those), and a lost
connection is invalidated so that the pool replaces it.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError


class PlainRead:
    def __init__(self, query: Select[Any]) -> None:
        self.query = query
        self.row: Any = namedtuple("Row", [column.key for column in query.selected_columns])  # type: ignore[misc]
        # Per dialect and driver paramstyle: SQL compiled for one engine's paramstyle.
        self._compiled: dict[tuple[str, str], tuple[str, tuple[str, ...] | None, dict[str, Any]]]
        self._compiled = {}

    def first(self, connection: Connection, params: dict[str, Any]) -> Any:
        """The first row (its fields named as the select's columns), or None."""
        sql, order, bound = self._compiled_for(connection)
        values = {**bound, **params}
        arguments = tuple(values[name] for name in order) if order is not None else values
        if not connection.in_transaction():
            connection.begin()
        dbapi_connection = connection.connection
        cursor = None
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute(sql, arguments)
            found = cursor.fetchone()
        except connection.dialect.loaded_dbapi.Error as error:
            # SQLAlchemy would also mark the pool's older connections stale: pool_pre_ping
            # finds those at checkout anyway (nnote.models.engine_options).
            lost = connection.dialect.is_disconnect(error, dbapi_connection, cursor)
            if lost:
                connection.invalidate(error)
            raise DBAPIError.instance(
                sql, arguments, error, connection.dialect.loaded_dbapi.Error,
                connection_invalidated=lost, dialect=connection.dialect,
            ) from error  # fmt: skip
        finally:
            if cursor is not None:
                with contextlib.suppress(Exception):  # as SQLAlchemy's _safe_close_cursor
                    cursor.close()
        return None if found is None else self.row._make(found)

    def _compiled_for(
        self, connection: Connection
    ) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        dialect = connection.dialect
        key = (dialect.name, dialect.paramstyle)
        if key not in self._compiled:
            compiled = self.query.compile(dialect=dialect)
            if compiled.literal_execute_params or compiled.post_compile_params:
                raise ValueError("PlainRead cannot run expanding or literal-execute parameters")
            order = tuple(compiled.positiontup) if compiled.positional else None  # type: ignore[arg-type]
            self._compiled[key] = (str(compiled), order, dict(compiled.params))
        return self._compiled[key]
