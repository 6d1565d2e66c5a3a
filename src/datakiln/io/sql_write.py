"""``write_sql``: create a table from Arrow types and insert rows, all or nothing.

PostgreSQL and SQLite run DDL inside transactions, so create/replace/insert is one
transaction there. MySQL/MariaDB commit every ``CREATE``/``DROP`` implicitly, so a new or
replaced table is first filled under a temporary name and then put in place with one
``RENAME TABLE`` (atomic in MariaDB and MySQL): a failure part-way leaves the old table as
it was and removes only the temporary table datakiln made.

Zoned timestamps: MySQL/MariaDB and SQLite have no zoned type; values are stored as UTC
wall time and the zone is recorded (see :mod:`datakiln.io._sqltypes`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from datakiln.errors import InvalidArgumentError, WriteError
from datakiln.io._secrets import redact_url
from datakiln.io._sqlconn import connect, engine, query_error, split_table, sqlalchemy, zone_marker
from datakiln.io._sqltypes import sqlalchemy_from_arrow, zoned_sqlite_type

__all__ = ["write_sql"]


def _columns(schema: pa.Schema) -> list[Any]:
    sa = sqlalchemy()
    columns = []
    for field in schema:
        sa_type, comment = sqlalchemy_from_arrow(field.type), None
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            comment = zone_marker(field.type.tz)
            sa_type = sa_type.with_variant(zoned_sqlite_type(field.type.tz), "sqlite")
        columns.append(sa.Column(field.name, sa_type, comment=comment))
    return columns


def _insert(conn: Any, table: Any, batches: Iterator[pa.Table], chunk_rows: int,
            zoneless: bool) -> int:
    written = 0
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
    return written


def write_sql(batches: Iterator[pa.Table] | pa.Table, name: str, url: str, *,
              schema: pa.Schema | None = None, if_exists: str = "fail",
              chunk_rows: int = 10_000, db_schema: str | None = None) -> int:
    """Create table ``name`` at ``url`` and insert the rows of ``batches``; returns rows.

    Parameters
    ----------
    batches : Arrow table or iterator of Arrow tables
        The rows; an iterator needs ``schema``.
    name : str
        Table name, quoted as an identifier. ``"sales.orders"`` is table ``orders`` in
        schema ``sales`` (as in :func:`datakiln.read_sql`) unless ``db_schema`` is given.
    url : str
        Database URL.
    if_exists : {"fail", "replace", "append"}
        What to do when the table exists. Either way a failure leaves the database as it
        was: one transaction on PostgreSQL and SQLite; on MySQL/MariaDB a new or replaced
        table is filled under a temporary name and renamed into place in one step.
    chunk_rows : int
        Rows per ``INSERT`` batch.
    db_schema : str, optional
        The database schema (MySQL: database) to write into.
    """
    sa = sqlalchemy()
    if if_exists not in ("fail", "replace", "append"):
        raise InvalidArgumentError(
            f"if_exists must be 'fail', 'replace' or 'append', got {if_exists!r}")
    if isinstance(batches, pa.Table):
        schema, batches = batches.schema, iter([batches])
    if schema is None:
        raise InvalidArgumentError("write_sql needs schema= with an iterator of tables")
    schema_name, table_name = split_table(name, db_schema)
    eng = engine(url)
    dialect = eng.dialect.name
    zoneless = dialect in ("mysql", "sqlite")
    shown = f"{schema_name}.{table_name}" if schema_name else table_name
    with connect(eng, url) as conn:
        try:
            with conn.begin():
                exists = sa.inspect(conn).has_table(table_name, schema=schema_name)
                if exists and if_exists == "fail":
                    raise InvalidArgumentError(
                        f"table {shown!r} already exists in {redact_url(url)!r}; pass "
                        "if_exists='replace' or 'append'")
                if dialect != "mysql" or (exists and if_exists == "append"):
                    table = sa.Table(table_name, sa.MetaData(), *_columns(schema),
                                     schema=schema_name)
                    if exists and if_exists == "replace":
                        table.drop(conn)
                    if not exists or if_exists == "replace":
                        table.create(conn)
                    return _insert(conn, table, batches, chunk_rows, zoneless)
            return _write_and_rename(conn, schema, batches, table_name, schema_name,
                                     replace=exists, chunk_rows=chunk_rows)
        except sa.exc.DBAPIError as exc:
            raise query_error(exc, f"INSERT INTO {shown}", url) from exc


def _write_and_rename(conn: Any, schema: pa.Schema, batches: Iterator[pa.Table], name: str,
                      schema_name: str | None, *, replace: bool, chunk_rows: int) -> int:
    """MySQL/MariaDB: fill a temporary table, then swap it in with one RENAME TABLE."""
    sa = sqlalchemy()
    token = uuid.uuid4().hex[:12]
    metadata = sa.MetaData()
    fresh = sa.Table(f"dk_new_{token}", metadata, *_columns(schema), schema=schema_name)
    target = sa.Table(name, metadata, schema=schema_name)
    old = sa.Table(f"dk_old_{token}", metadata, schema=schema_name)
    quote = conn.dialect.identifier_preparer.format_table
    fresh.create(conn)  # commits implicitly on MySQL
    conn.commit()
    try:
        with conn.begin():
            written = _insert(conn, fresh, batches, chunk_rows, zoneless=True)
        if replace:
            conn.exec_driver_sql(f"RENAME TABLE {quote(target)} TO {quote(old)}, "
                                 f"{quote(fresh)} TO {quote(target)}")
        else:
            conn.exec_driver_sql(f"RENAME TABLE {quote(fresh)} TO {quote(target)}")
        conn.commit()
    except BaseException:
        conn.rollback()
        fresh.drop(conn, checkfirst=True)
        conn.commit()
        raise
    if replace:
        try:
            old.drop(conn)
            conn.commit()
        except sa.exc.DBAPIError as exc:
            raise WriteError(f"table {name!r} was replaced, but its old rows, kept as "
                             f"{old.name!r}, could not be dropped: {exc.orig}; drop it by "
                             "hand") from exc
    return written
