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

from collections import namedtuple
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError


class PlainRead:
    def __init__(self, query: Select[Any]) -> None:
        self.query = query
        self.row: Any = namedtuple("Row", [column.key for column in query.selected_columns])  # type: ignore[misc]
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def first(self, connection: Connection, params: dict[str, Any]) -> Any:
        """The first row (its fields named as the select's columns), or None."""
        sql, order = self._compiled_for(connection)
        arguments = tuple(params[name] for name in order) if order else params
        if not connection.in_transaction():
            connection.begin()
        dbapi_connection = connection.connection
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(sql, arguments)
            found = cursor.fetchone()
        except connection.dialect.loaded_dbapi.Error as error:
            lost = connection.dialect.is_disconnect(error, dbapi_connection, cursor)
            if lost:
                connection.invalidate(error)
            raise DBAPIError.instance(
                sql, arguments, error, connection.dialect.loaded_dbapi.Error,
                connection_invalidated=lost, dialect=connection.dialect,
            ) from error  # fmt: skip
        finally:
            cursor.close()
        return None if found is None else self.row._make(found)

    def _compiled_for(self, connection: Connection) -> tuple[str, tuple[str, ...] | None]:
        dialect = connection.dialect
        if dialect.name not in self._compiled:
            compiled = self.query.compile(dialect=dialect)
            order = tuple(compiled.positiontup) if compiled.positional else None  # type: ignore[arg-type]
            self._compiled[dialect.name] = (str(compiled), order)
        return self._compiled[dialect.name]
