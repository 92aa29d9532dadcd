"""Prepared statements on the driver's cursor, for the few statements every webhook and delivery runs.

A Core statement is compiled once per dialect and set of parameter names - SQL text, parameter order, the
columns' bind and result processors, taken from SQLAlchemy's own compilation - and then runs straight on
the DBAPI cursor of the connection's current transaction. What that skips is SQLAlchemy's per-execution
work (the compiled-cache lookup, building the execution context, processing parameters by name, wrapping
the cursor in a result): measured at ~50 us a statement over sqlite3's ~18 us, and three to five such
statements per webhook (docs/design.md, "The hot path on the driver"). The SQL, the types' encodings and
the transaction are exactly those SQLAlchemy would use: the connection, its ``BEGIN`` and its savepoints
are SQLAlchemy's; only the cursor call is direct.

A driver error leaves as the same ``sqlalchemy.exc.DBAPIError`` subclass (``IntegrityError``,
``OperationalError`` ...) SQLAlchemy would raise, with the connection invalidated when the driver says
it is gone, so ``gateway.store.db.storage_error`` and the writer's retries read it the same way. Outside a
transaction, or while a ``before_cursor_execute`` listener watches the connection (tests that capture the
statements), the statement runs through ``Connection.execute`` as before.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement, Executable

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # parameter names in the order the SQL takes them
    binds: tuple[Processor, ...]
    defaults: Mapping[str, Any]  # values the statement carries itself (``status = 'pending'``)
    columns: tuple[str, ...]  # result columns, for a statement that returns rows
    results: tuple[Processor, ...]

    def row(self, values: Mapping[str, Any]) -> list[Any]:
        out = []
        for name, process in zip(self.names, self.binds, strict=True):
            value = values[name] if name in values else self.defaults[name]
            out.append(value if process is None or value is None else process(value))
        return out

    def mapping(self, raw: Sequence[Any]) -> dict[str, Any]:
        return {
            name: value if process is None or value is None else process(value)
            for name, process, value in zip(self.columns, self.results, raw, strict=True)
        }


class Prepared:
    """One Core statement, run on the driver's cursor (see the module's docstring)."""

    __slots__ = ("_plans", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._plans: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, ...], _Plan]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def _executable(self) -> Executable:
        return cast(Executable, self.statement)

    def _plan(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
        plans = self._plans.get(dialect)
        if plans is None:
            plans = self._plans[dialect] = {}
        plan = plans.get(keys)
        if plan is None:
            plan = plans[keys] = self._compile(dialect, keys)
        return plan

    def _compile(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
        compiled: Any = self.statement.compile(dialect=dialect, column_keys=list(keys))
        column_defaults = ("insert_prefetch", "update_prefetch", "postfetch")  # Python-side defaults to run
        if compiled.positiontup is None or any(getattr(compiled, n, None) for n in column_defaults):
            raise TypeError("a prepared statement takes positional parameters and no column defaults")
        binds = compiled.binds
        processors = compiled._bind_processors  # what SQLAlchemy applies to each parameter (JSON, datetimes)
        names = tuple(compiled.positiontup)
        defaults = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
        columns = tuple(entry.keyname for entry in compiled._result_columns)
        results = tuple(
            entry.type._cached_result_processor(dialect, None) for entry in compiled._result_columns
        )
        return _Plan(
            sql=compiled.string,
            names=names,
            binds=tuple(processors.get(name) for name in names),
            defaults=defaults,
            columns=columns,
            results=results,
        )

    # --- running it -------------------------------------------------------------------------------------

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> int:
        """Runs the statement once. Returns the rows it changed."""
        if _watched(conn):
            return int(conn.execute(self._executable, dict(values)).rowcount)
        plan = self._plan(conn.dialect, tuple(values))
        with _Cursor(conn, plan, values) as cursor:
            cursor.execute(plan.sql, plan.row(values))
            return int(cursor.rowcount)

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Runs the statement for every row (the same keys in each), in one driver call."""
        if not rows:
            return
        if _watched(conn):
            conn.execute(self._executable, [dict(r) for r in rows])
            return
        plan = self._plan(conn.dialect, tuple(rows[0]))
        with _Cursor(conn, plan, rows[0]) as cursor:
            cursor.executemany(plan.sql, [plan.row(r) for r in rows])

    def first(self, conn: Connection, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row the statement returns, by column name, or None."""
        if _watched(conn):
            found = conn.execute(self._executable, dict(values)).mappings().first()
            return dict(found) if found is not None else None
        plan = self._plan(conn.dialect, tuple(values))
        with _Cursor(conn, plan, values) as cursor:
            cursor.execute(plan.sql, plan.row(values))
            raw = cursor.fetchone()
        return plan.mapping(raw) if raw is not None else None


def _watched(conn: Connection) -> bool:
    """True when the direct path would change what the connection does or what its listeners see."""
    return not conn.in_transaction() or bool(conn.dispatch.before_cursor_execute)


class _Cursor:
    """A DBAPI cursor of ``conn``'s connection; a driver error leaves as SQLAlchemy's exception."""

    __slots__ = ("_conn", "_cursor", "_plan", "_values")

    def __init__(self, conn: Connection, plan: _Plan, values: Mapping[str, Any]) -> None:
        self._conn = conn
        self._plan = plan
        self._values = values
        self._cursor: Any = None

    def __enter__(self) -> Any:
        self._cursor = self._conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        return self._cursor

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any) -> None:
        cursor, self._cursor = self._cursor, None
        dialect = self._conn.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        with contextlib.suppress(dbapi_error):
            cursor.close()
        if exc is None or not isinstance(exc, dbapi_error):
            return
        invalidated = bool(dialect.is_disconnect(exc, self._conn.connection.dbapi_connection, cursor))
        wrapped = DBAPIError.instance(
            self._plan.sql,
            _shown(self._values),
            exc,
            dbapi_error,
            connection_invalidated=invalidated,
            dialect=dialect,
        )
        if invalidated:
            self._conn.invalidate(exc)
        raise wrapped from exc


def _shown(values: Mapping[str, Any]) -> dict[str, str]:
    """Parameters as an error may show them: names only, never a body or a secret."""
    return dict.fromkeys(values, "…")
