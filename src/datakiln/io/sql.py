"""SQL databases through SQLAlchemy 2: a table or one query, streamed; and writes.

``postgresql://``, ``mysql://``/``mariadb://`` and ``sqlite:///`` URLs get a default driver
(psycopg 3, PyMySQL, the standard library's sqlite3); a URL with an explicit driver
(``postgresql+psycopg2://``) is used as given. Rows are fetched ``chunk_rows`` at a time
through a server-side cursor, so a result never has to fit in memory.

A *table* and a *query* are separate arguments and never mix: a table name is quoted as an
identifier by SQLAlchemy (any legal name, quotes and non-ASCII letters included) and never
runs as SQL; a query runs exactly as given, as one statement, through the driver's
single-statement path (psycopg's extended protocol behind a server-side cursor, sqlite3,
PyMySQL without multi-statements) — datakiln never splits it at ``;`` and never pastes it
into a statement of its own (no ``SELECT COUNT(*) FROM (<query>)``). Every read runs in a
read-only session (see :mod:`datakiln.io._sqlconn`). Values belong in ``params``.

Types: a table's come from reflection (zones recorded by :func:`write_sql` restored); a
query's from its first rows and the cursor description.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError, QueryError
from datakiln.io._secrets import redact_text, redact_url
from datakiln.io._sqlconn import (
    connect,
    engine,
    normalise_url,
    query_error,
    split_table,
    sqlalchemy,
    zone_from_marker,
)
from datakiln.io._sqltypes import arrow_from_sqlalchemy, arrow_from_values, column_array
from datakiln.io.base import ReadTask, SizeEstimate, Source, apply_pushdown
from datakiln.io.sql_write import write_sql

__all__ = ["SqlSource", "normalise_url", "write_sql"]

_SAMPLE_ROWS = 1000


class SqlSource(Source):
    """A database table or one ``SELECT`` query, streamed ``chunk_rows`` rows at a time.

    Chunks come from one cursor in order, so its read tasks are not independent.

    Parameters
    ----------
    url : str
        SQLAlchemy-style URL, with or without a driver suffix.
    table : str, optional
        A table name, quoted as an identifier, never run as SQL. ``"sales.orders"`` is table
        ``orders`` in schema ``sales`` unless ``db_schema`` is given.
    query : str, optional
        One SQL statement that returns rows; values go in ``params`` as ``:name``.
    db_schema : str, optional
        The database schema (MySQL: database) of ``table``; ``table`` is then taken whole.
    params : dict, optional
        Bound parameters of the query.
    chunk_rows : int
        Rows per fetch from the server-side cursor (default 10,000).
    """

    def __init__(self, url: str, *, table: str | None = None, query: str | None = None,
                 db_schema: str | None = None, params: Mapping[str, Any] | None = None,
                 chunk_rows: int = 10_000) -> None:
        super().__init__()
        self.tasks_are_independent = False
        if (table is None) == (query is None):
            raise InvalidArgumentError(
                "read_sql needs exactly one of table= (a table name, read whole) or query= "
                f"(one SQL statement); got {'both' if table is not None else 'neither'}")
        if query is not None and (not isinstance(query, str) or not query.strip()):
            raise InvalidArgumentError(f"query must be a non-empty SQL string, got {query!r}")
        if table is not None and params:
            raise InvalidArgumentError("params only apply to query=, not to table=")
        if db_schema is not None and table is None:
            raise InvalidArgumentError("db_schema only applies to table=, not to query=; "
                                       "name the schema inside the query")
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows <= 0:
            raise InvalidArgumentError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        self.url, self.params, self.chunk_rows = url, dict(params or {}), int(chunk_rows)
        self.engine = engine(url, read_only=True)
        self.backend = self.engine.dialect.name
        self.is_table = table is not None
        what = f"table {table!r}" if table is not None else f"query {query.strip()[:60]!r}"
        self.name = f"{what} @ {redact_url(url)}"
        with connect(self.engine, url) as conn:
            if table is not None:
                self._reflect(conn, *split_table(table, db_schema))
            else:
                self.table = None
                self.query = query
                # without params a colon is SQL's own ('{"a":1}'::jsonb, '12:30'), not a :name
                # placeholder that SQLAlchemy would ask a value for
                self.statement = sqlalchemy().text(query if self.params else query.replace(":", "\\:"))
                self._schema = self._sample_schema(conn)

    # -- tables -------------------------------------------------------------------------------
    def _reflect(self, conn: Any, schema: str | None, name: str) -> None:
        sa = sqlalchemy()
        where = f"{schema}.{name}" if schema else name
        try:
            self.table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
        except sa.exc.NoSuchTableError as exc:
            hint = (f" (or table {where!r} in the default schema: pass db_schema=... to take "
                    "the name whole)" if schema and "." in where else "")
            raise QueryError(f"no table {name!r}" + (f" in schema {schema!r}" if schema else "")
                             + f" at {redact_url(self.url)!r}{hint}") from exc
        except sa.exc.DBAPIError as exc:
            first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
            raise QueryError(redact_text(f"cannot read table {where!r} at {redact_url(self.url)!r}: "
                                         f"{first}", self.url)) from exc
        declared = self._sqlite_declared_types(conn, schema, name)
        fields = []
        for column in self.table.columns:
            if isinstance(column.type, sa.Float):  # MySQL DOUBLE reflects as Decimal
                column.type.asdecimal = False
            zone = zone_from_marker(declared.get(column.name) or column.comment)
            if zone is not None:
                if self.backend == "sqlite":  # reflected by affinity as NUMERIC
                    from sqlalchemy.dialects.sqlite import DATETIME
                    column.type = DATETIME()
                fields.append(pa.field(column.name, pa.timestamp("us", tz=zone)))
            else:
                fields.append(pa.field(column.name, arrow_from_sqlalchemy(column.type)))
        self.query = None
        self.statement = sa.select(self.table)
        self._schema = pa.schema(fields)

    def _sqlite_declared_types(self, conn: Any, schema: str | None, name: str) -> dict[str, str]:
        if self.backend != "sqlite":
            return {}
        rows = conn.exec_driver_sql("SELECT name, type FROM pragma_table_info(?, ?)",
                                    (name, schema or "main"))
        return {row[0]: row[1] for row in rows}

    # -- queries ------------------------------------------------------------------------------
    def _sample_schema(self, conn: Any) -> pa.Schema:
        """Column types from the first rows of the query itself and its cursor description."""
        sa = sqlalchemy()
        if self.backend == "mysql":  # stop the server after the sample (no LIMIT pasted in)
            conn.exec_driver_sql(f"SET SESSION sql_select_limit = {_SAMPLE_ROWS}")
        try:
            result = conn.execution_options(stream_results=True).execute(
                self.statement, self.params)
            try:
                description = result.cursor.description if result.cursor is not None else None
                names = list(result.keys())
                rows = result.fetchmany(_SAMPLE_ROWS) if result.returns_rows else []
            finally:
                result.close()
        except sa.exc.DBAPIError as exc:
            raise query_error(exc, self.query, self.url) from exc
        except sa.exc.StatementError as exc:
            raise QueryError(f"the query {self.query[:200]!r} could not be run: {exc}; values "
                             "for its :name placeholders go in params=") from exc
        finally:
            if self.backend == "mysql":
                conn.exec_driver_sql("SET SESSION sql_select_limit = DEFAULT")
        if not names:
            raise QueryError(f"the query {self.query[:200]!r} returns no rows to read; read_sql "
                             "reads one SELECT (or another statement that returns rows)")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise QueryError(f"the query {self.query[:200]!r} returns the column(s) {repeated} more than "
                             "once; give each column its own name (e.g. SELECT a, a AS a_copy ...)")
        columns = list(zip(*rows)) if rows else [[] for _ in names]
        description = description or [(name,) for name in names]
        return pa.schema([pa.field(name, arrow_from_values(list(values), desc, self.backend))
                          for name, values, desc in zip(names, columns, description)])

    # -- Source -------------------------------------------------------------------------------
    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def fingerprint(self) -> str:
        return f"sql:{redact_url(self.url)}:{self.statement}:{sorted(self.params.items())}"

    def estimate_size(self) -> SizeEstimate:
        if self.is_table:
            return SizeEstimate(self.count_rows(), None, exact=True)
        return SizeEstimate(None, None)  # counting a query means running it

    def count_rows(self) -> int:
        sa = sqlalchemy()
        if not self.is_table:  # run the query itself; never wrapped in SELECT COUNT(*)
            with contextlib.closing(self._partitions()) as partitions:
                return sum(len(rows) for rows in partitions)
        query = sa.select(sa.func.count()).select_from(self.table)
        with connect(self.engine, self.url) as conn:
            try:
                return int(conn.execute(query).scalar_one())
            except sa.exc.DBAPIError as exc:
                raise query_error(exc, str(query), self.url) from exc

    def _partitions(self) -> Iterator[Sequence[Any]]:
        sa = sqlalchemy()
        with connect(self.engine, self.url) as conn:
            streaming = conn.execution_options(stream_results=True, yield_per=self.chunk_rows)
            try:
                result = streaming.execute(self.statement, self.params)
                yield from result.partitions(self.chunk_rows)
            except sa.exc.DBAPIError as exc:
                raise query_error(exc, self.query or str(self.statement), self.url) from exc

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        with contextlib.closing(self._partitions()) as partitions:  # closes the cursor early
            for rows in partitions:
                yield lambda rows=rows: apply_pushdown(self._to_table(rows), columns, filter)

    def _to_table(self, rows: Sequence[Any]) -> pa.Table:
        columns = list(zip(*rows)) if rows else [[] for _ in self._schema]
        arrays = [column_array(list(values), field.type, field.name)
                  for values, field in zip(columns, self._schema)]
        return pa.Table.from_arrays(arrays, schema=self._schema)
