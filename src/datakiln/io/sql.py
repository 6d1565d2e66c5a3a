"""SQL databases through SQLAlchemy 2: streamed reads with server-side cursors, and writes.

``postgresql://``, ``mysql://``/``mariadb://`` and ``sqlite:///`` URLs get a default driver
(psycopg 3, PyMySQL, the standard library's sqlite3); a URL with an explicit driver
(``postgresql+psycopg2://``) is used as given. Rows are fetched ``chunk_rows`` at a time
through a server-side cursor, so a result never has to fit in memory. Values only ever
reach the database as bound parameters.

Types: a table's column types come from reflection; a query's from its first rows and the
cursor description. Timestamps with a time zone become UTC ``timestamp[us, tz=UTC]``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln._optional import import_optional
from datakiln.errors import (
    ConnectionFailedError,
    InvalidArgumentError,
    QueryError,
    SchemaError,
)
from datakiln.io.base import ReadTask, SizeEstimate, Source, apply_pushdown

__all__ = ["SqlSource", "normalise_url", "write_sql"]

_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
                    "mysql": "mysql+pymysql", "mariadb": "mysql+pymysql"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_SAMPLE_ROWS = 1000
# PostgreSQL type OIDs and MySQL field type codes for columns whose sampled values are all NULL
_PG_TYPES = {16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 700: pa.float32(),
             701: pa.float64(), 1082: pa.date32(), 1114: pa.timestamp("us"),
             1184: pa.timestamp("us", tz="UTC"), 1083: pa.time64("us"), 17: pa.binary()}
_MYSQL_TYPES = {1: pa.int8(), 2: pa.int16(), 3: pa.int32(), 8: pa.int64(), 9: pa.int32(),
                4: pa.float32(), 5: pa.float64(), 10: pa.date32(), 7: pa.timestamp("us"),
                12: pa.timestamp("us"), 11: pa.duration("us"), 13: pa.int16()}


def _sqlalchemy() -> Any:
    return import_optional("sqlalchemy", extra="sql", purpose="SQL sources")


def normalise_url(url: str) -> str:
    """Add the default driver to a plain URL: ``postgresql://`` → ``postgresql+psycopg://``."""
    if "://" not in url:
        raise InvalidArgumentError(
            f"{url!r} is not a database URL; use e.g. 'postgresql://user@host:5432/db', "
            "'mysql://root@127.0.0.1:3306/test' or 'sqlite:///path/to/file.db'")
    scheme, rest = url.split("://", 1)
    return f"{_DEFAULT_DRIVERS.get(scheme, scheme)}://{rest}"


def _engine(url: str) -> Any:
    sa = _sqlalchemy()
    full = normalise_url(url)
    try:
        # no pool: a source's connections close when it is done, so no idle session keeps
        # locks that would block the user's DDL
        return sa.create_engine(full, poolclass=sa.pool.NullPool)
    except ImportError as exc:
        raise import_optional(str(exc.name or "driver"), extra="sql",
                              purpose=f"{full.split('://')[0]} URLs") from exc
    except Exception as exc:  # SQLAlchemy raises ArgumentError and friends for bad URLs
        raise InvalidArgumentError(f"cannot use database URL {_safe(url)!r}: {exc}") from exc


def _safe(url: str) -> str:
    """The URL with any password masked."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _connect(engine: Any, url: str) -> Any:
    sa = _sqlalchemy()
    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        raise ConnectionFailedError(
            f"cannot connect to {_safe(url)!r}: {str(exc.orig).strip().splitlines()[0]}; check "
            "that the server runs, the host, port, user, password and database name") from exc


def _query_error(exc: Exception, sql: str) -> QueryError:
    orig = getattr(exc, "orig", exc)
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return QueryError(f"the database rejected the query {sql[:200]!r}: {first}")


def _arrow_from_sqlalchemy(sa_type: Any) -> pa.DataType:
    sa = _sqlalchemy()
    checks = [
        (sa.Boolean, pa.bool_()), (sa.SmallInteger, pa.int16()), (sa.BigInteger, pa.int64()),
        (sa.Integer, pa.int64()), (sa.Date, pa.date32()), (sa.Time, pa.time64("us")),
        (sa.Interval, pa.duration("us")), (sa.LargeBinary, pa.binary()), (sa.String, pa.string()),
        (sa.JSON, pa.string()), (sa.Uuid, pa.string()),
    ]
    if isinstance(sa_type, sa.DateTime):
        return pa.timestamp("us", tz="UTC") if sa_type.timezone else pa.timestamp("us")
    if isinstance(sa_type, sa.Numeric) and not isinstance(sa_type, sa.Float):
        precision, scale = sa_type.precision, sa_type.scale
        if precision and precision <= 38:
            return pa.decimal128(precision, scale or 0)
        return pa.decimal128(38, 10)
    if isinstance(sa_type, sa.Float):
        return pa.float64()
    for cls, arrow in checks:
        if isinstance(sa_type, cls):
            return arrow
    return pa.string()


def _arrow_from_values(values: list[Any], description: Sequence[Any], dialect: str) -> pa.DataType:
    present = [v for v in values if v is not None]
    if not present:
        code = description[1] if len(description) > 1 else None
        table = _PG_TYPES if dialect == "postgresql" else _MYSQL_TYPES if dialect == "mysql" else {}
        return table.get(code, pa.string()) if isinstance(code, int) else pa.string()
    first = present[0]
    if isinstance(first, bool):
        return pa.bool_()
    if isinstance(first, int):
        return pa.int64()
    if isinstance(first, float):
        return pa.float64()
    if isinstance(first, decimal.Decimal):
        precision, scale = (description[4], description[5]) if len(description) > 5 else (None, None)
        if precision and scale is not None and 0 < precision <= 38:
            return pa.decimal128(precision, scale)
        return pa.decimal128(38, max(max(-v.as_tuple().exponent, 0) for v in present))
    if isinstance(first, dt.datetime):
        return pa.timestamp("us", tz="UTC") if first.tzinfo else pa.timestamp("us")
    if isinstance(first, dt.date):
        return pa.date32()
    if isinstance(first, dt.time):
        return pa.time64("us")
    if isinstance(first, dt.timedelta):
        return pa.duration("us")
    if isinstance(first, (bytes, bytearray, memoryview)):
        return pa.binary()
    return pa.string()


def _column_array(values: Sequence[Any], dtype: pa.DataType, column: str) -> pa.Array:
    if pa.types.is_string(dtype):
        values = [v if v is None or isinstance(v, str) else
                  json.dumps(v) if isinstance(v, (dict, list)) else str(v) for v in values]
    elif pa.types.is_binary(dtype):
        values = [bytes(v) if isinstance(v, memoryview) else v for v in values]
    elif pa.types.is_timestamp(dtype) and dtype.tz is None:
        values = [v.replace(tzinfo=None) if isinstance(v, dt.datetime) and v.tzinfo else v
                  for v in values]
    elif pa.types.is_timestamp(dtype):
        values = [v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo
                  is None else v for v in values]
    try:
        return pa.array(values, type=dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise SchemaError(f"SQL column {column!r}: values do not fit {dtype} ({exc}); the type "
                          "was taken from the first rows") from exc


class SqlSource(Source):
    """A table or a ``SELECT`` query, streamed ``chunk_rows`` rows at a time.

    Chunks come from one cursor in order, so its read tasks are not independent.

    Parameters
    ----------
    table_or_query : str
        A table name (``"adult"`` or ``"schema.adult"``) or a SQL query; values belong in
        ``params`` as ``:name`` placeholders, never formatted into the string.
    url : str
        SQLAlchemy-style URL, with or without a driver suffix.
    params : dict, optional
        Bound parameters of the query.
    chunk_rows : int
        Rows per fetch from the server-side cursor (default 10,000).
    """

    def __init__(self, table_or_query: str, url: str, *, params: Mapping[str, Any] | None = None,
                 chunk_rows: int = 10_000) -> None:
        super().__init__()
        self.tasks_are_independent = False
        if chunk_rows <= 0:
            raise InvalidArgumentError(f"chunk_rows must be positive, got {chunk_rows}")
        sa = _sqlalchemy()
        self.url, self.params, self.chunk_rows = url, dict(params or {}), int(chunk_rows)
        self.engine = _engine(url)
        self.dialect = self.engine.dialect.name
        self.is_table = bool(_IDENTIFIER.match(table_or_query.strip()))
        if self.is_table and self.params:
            raise InvalidArgumentError("params only apply to a query, not to a table name")
        self.name = f"{table_or_query.strip()[:60]} @ {_safe(url)}"
        with _connect(self.engine, url) as conn:
            if self.is_table:
                schema_name, _, table = table_or_query.strip().rpartition(".")
                try:
                    self.table = sa.Table(table, sa.MetaData(), schema=schema_name or None,
                                          autoload_with=conn)
                except sa.exc.NoSuchTableError as exc:
                    raise QueryError(f"no table {table_or_query!r} in {_safe(url)!r}") from exc
                for column in self.table.columns:
                    if isinstance(column.type, sa.Float):  # MySQL DOUBLE reflects as Decimal
                        column.type.asdecimal = False
                self.statement = sa.select(self.table)
                self._schema = pa.schema([pa.field(c.name, _arrow_from_sqlalchemy(c.type))
                                          for c in self.table.columns])
            else:
                self.table = None
                self.statement = sa.text(table_or_query)
                self._schema = self._infer_query_schema(conn, table_or_query)

    def _infer_query_schema(self, conn: Any, sql: str) -> pa.Schema:
        sa = _sqlalchemy()
        sample_sql = f"SELECT * FROM ({sql.rstrip().rstrip(';')}) AS dk_sample LIMIT {_SAMPLE_ROWS}"
        try:
            result = conn.execute(sa.text(sample_sql), self.params)
            description = result.cursor.description if result.cursor is not None else None
            names = list(result.keys())
            rows = result.fetchall()
        except sa.exc.DBAPIError as exc:
            raise _query_error(exc, sql) from exc
        except sa.exc.StatementError as exc:
            raise QueryError(f"the query {sql[:200]!r} could not be run: {exc}") from exc
        columns = list(zip(*rows)) if rows else [[] for _ in names]
        description = description or [(name,) for name in names]
        return pa.schema([pa.field(name, _arrow_from_values(list(values), desc, self.dialect))
                          for name, values, desc in zip(names, columns, description)])

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def fingerprint(self) -> str:
        return f"sql:{_safe(self.url)}:{self.statement}:{sorted(self.params.items())}"

    def estimate_size(self) -> SizeEstimate:
        return SizeEstimate(self.count_rows(), None, exact=True)

    def count_rows(self) -> int:
        sa = _sqlalchemy()
        if self.is_table:
            query = sa.select(sa.func.count()).select_from(self.statement.subquery())
        else:
            query = sa.text(f"SELECT COUNT(*) FROM ({str(self.statement).rstrip(';')}) AS dk_count")
        with _connect(self.engine, self.url) as conn:
            try:
                return int(conn.execute(query, self.params).scalar_one())
            except sa.exc.DBAPIError as exc:
                raise _query_error(exc, str(self.statement)) from exc

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        sa = _sqlalchemy()
        with _connect(self.engine, self.url) as conn:
            streaming = conn.execution_options(stream_results=True, yield_per=self.chunk_rows)
            try:
                result = streaming.execute(self.statement, self.params)
                for rows in result.partitions(self.chunk_rows):
                    yield lambda rows=rows: apply_pushdown(self._to_table(rows), columns, filter)
            except sa.exc.DBAPIError as exc:
                raise _query_error(exc, str(self.statement)) from exc

    def _to_table(self, rows: Sequence[Any]) -> pa.Table:
        columns = list(zip(*rows))
        arrays = [_column_array(list(values), field.type, field.name)
                  for values, field in zip(columns, self._schema)]
        return pa.Table.from_arrays(arrays, schema=self._schema)


def _sqlalchemy_from_arrow(dtype: pa.DataType) -> Any:
    sa = _sqlalchemy()
    from sqlalchemy.dialects import mysql
    if pa.types.is_boolean(dtype):
        return sa.Boolean()
    if pa.types.is_integer(dtype):
        return sa.BigInteger() if dtype.bit_width > 32 or pa.types.is_unsigned_integer(dtype) \
            else sa.Integer() if dtype.bit_width == 32 else sa.SmallInteger()
    if pa.types.is_floating(dtype):
        return sa.Double()
    if pa.types.is_decimal(dtype):
        return sa.Numeric(dtype.precision, dtype.scale)
    if pa.types.is_timestamp(dtype):  # MySQL keeps microseconds only when asked (fsp=6)
        return sa.DateTime(timezone=dtype.tz is not None).with_variant(
            mysql.DATETIME(fsp=6), "mysql", "mariadb")
    if pa.types.is_date(dtype):
        return sa.Date()
    if pa.types.is_time(dtype):
        return sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb")
    if pa.types.is_duration(dtype):
        return sa.Interval()
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return sa.LargeBinary()
    if pa.types.is_dictionary(dtype):
        return _sqlalchemy_from_arrow(dtype.value_type)
    return sa.Text()


def write_sql(batches: Iterator[pa.Table] | pa.Table, name: str, url: str, *,
              schema: pa.Schema | None = None, if_exists: str = "fail",
              chunk_rows: int = 10_000) -> int:
    """Create table ``name`` at ``url`` and insert the rows of ``batches``; returns rows.

    ``if_exists``: ``"fail"`` (default), ``"replace"`` or ``"append"``. Everything runs in
    one transaction, so a failure leaves the database as it was.
    """
    sa = _sqlalchemy()
    if if_exists not in ("fail", "replace", "append"):
        raise InvalidArgumentError(f"if_exists must be 'fail', 'replace' or 'append', got {if_exists!r}")
    if isinstance(batches, pa.Table):
        schema, batches = batches.schema, iter([batches])
    assert schema is not None, "schema is required with an iterator of tables"
    engine = _engine(url)
    zoneless = engine.dialect.name in ("mysql", "mariadb", "sqlite")
    metadata = sa.MetaData()
    table = sa.Table(name, metadata, *[sa.Column(f.name, _sqlalchemy_from_arrow(f.type))
                                       for f in schema])
    written = 0
    with _connect(engine, url) as conn:
        try:
            with conn.begin():
                exists = sa.inspect(conn).has_table(name)
                if exists and if_exists == "fail":
                    raise InvalidArgumentError(
                        f"table {name!r} already exists in {_safe(url)!r}; pass "
                        "if_exists='replace' or 'append'")
                if exists and if_exists == "replace":
                    table.drop(conn)
                if not exists or if_exists == "replace":
                    table.create(conn)
                for batch in batches:
                    for start in range(0, batch.num_rows, chunk_rows):
                        rows = batch.slice(start, chunk_rows).to_pylist()
                        if zoneless:  # MySQL/SQLite DATETIME has no zone: store UTC wall time
                            rows = [{k: (v.astimezone(dt.UTC).replace(tzinfo=None)
                                         if isinstance(v, dt.datetime) and v.tzinfo else v)
                                     for k, v in row.items()} for row in rows]
                        if rows:
                            conn.execute(table.insert(), rows)
                            written += len(rows)
        except sa.exc.DBAPIError as exc:
            raise _query_error(exc, f"INSERT INTO {name}") from exc
    return written
