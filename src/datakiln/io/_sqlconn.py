"""What SQL reads and writes share: engines, read-only sessions, table names, messages.

Reads get their own engine whose every connection is read-only before datakiln runs a
statement on it: ``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`` on PostgreSQL,
``SET SESSION TRANSACTION READ ONLY`` on MySQL/MariaDB (and no ``CLIENT.MULTI_STATEMENTS``,
whatever the URL asks), ``PRAGMA query_only = ON`` on SQLite. Passwords never reach a
message: URLs are shown through :func:`datakiln.io._secrets.redact_url`, and a driver's own
error text through :func:`~datakiln.io._secrets.redact_text`.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import quote, unquote

from datakiln._optional import import_optional
from datakiln.errors import ConnectionFailedError, InvalidArgumentError, QueryError, SourceNotFoundError
from datakiln.io._secrets import redact_text, redact_url, split_url

__all__ = ["DB_SCHEMES", "connect", "engine", "is_database_url", "normalise_url", "query_error",
           "split_table", "sqlalchemy", "zone_marker", "zone_from_marker"]

_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
                    "mysql": "mysql+pymysql", "mariadb": "mysql+pymysql"}
#: URL schemes (before any ``+driver``) that name a database rather than a file system
DB_SCHEMES = frozenset({"postgresql", "postgres", "mysql", "mariadb", "sqlite", "oracle",
                        "mssql", "cockroachdb", "duckdb", "snowflake", "redshift"})
_MULTI_STATEMENTS = 1 << 16  # MySQL client capability flag CLIENT.MULTI_STATEMENTS
_ZONE = re.compile(r"datakiln:tz=([^\s\"]+)")


def sqlalchemy() -> Any:
    return import_optional("sqlalchemy", extra="sql", purpose="SQL sources")


def is_database_url(text: object) -> bool:
    """Whether ``text`` is a ``scheme://`` URL whose scheme names a database."""
    parts = split_url(text) if isinstance(text, str) else None
    return parts is not None and parts.scheme.split("+")[0].lower() in DB_SCHEMES


def normalise_url(url: str) -> str:
    """Add the default driver to a plain URL (``postgresql://`` → ``postgresql+psycopg://``)
    and percent-encode the user and password, so an ``@`` or ``/`` in a password connects."""
    parts = split_url(url)
    if parts is None:
        raise InvalidArgumentError(
            f"{redact_url(url)!r} is not a database URL; use e.g. 'postgresql://user@host:5432/db', "
            "'mysql://root@127.0.0.1:3306/test' or 'sqlite:///path/to/file.db'")
    out = f"{_DEFAULT_DRIVERS.get(parts.scheme, parts.scheme)}://"
    if parts.scheme.startswith("sqlite"):  # a file path: nothing to encode
        return out + url.split("://", 1)[1]
    if parts.user is not None:
        out += quote(unquote(parts.user), safe="")
        if parts.password is not None:
            out += ":" + quote(unquote(parts.password), safe="")
        out += "@"
    out += parts.location
    return out + (f"?{parts.query}" if parts.query is not None else "")


def _read_only(dialect: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if dialect == "sqlite":
            dbapi_connection.execute("PRAGMA query_only = ON")
            return
        statement = {"postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
                     "mysql": "SET SESSION TRANSACTION READ ONLY"}.get(dialect)
        if statement is None:
            return
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
        dbapi_connection.commit()  # a SET inside a transaction that is rolled back is undone

    return on_connect


def _single_statements(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    if "client_flag" in cparams:
        cparams["client_flag"] = int(cparams["client_flag"]) & ~_MULTI_STATEMENTS


def _sqlite_transactional_ddl(dbapi_connection: Any, _record: Any) -> None:
    # sqlite3 commits DDL on its own unless it leaves transactions to us (SQLAlchemy's recipe)
    dbapi_connection.isolation_level = None


def engine(url: str, *, read_only: bool = False) -> Any:
    """A SQLAlchemy engine without a pool (connections close when done, holding no locks)."""
    sa = sqlalchemy()
    full = normalise_url(url)
    try:
        created = sa.create_engine(full, poolclass=sa.pool.NullPool)
    except ImportError as exc:
        raise import_optional(str(exc.name or "driver"), extra="sql",
                              purpose=f"{full.split('://')[0]} URLs") from exc
    except Exception as exc:  # SQLAlchemy raises ArgumentError and friends for bad URLs
        raise InvalidArgumentError(f"cannot use database URL {redact_url(url)!r}: "
                                   f"{redact_text(str(exc), url)}") from exc
    dialect = created.dialect.name
    database = created.url.database
    if (read_only and dialect == "sqlite" and database and database != ":memory:"
            and not created.url.query.get("uri") and not os.path.exists(database)):
        # sqlite3 would create an empty database there and report "no table"
        raise SourceNotFoundError(
            f"no SQLite database file at {database!r} (from {redact_url(url)!r}); check the path: "
            f"sqlite:///name.db is relative to {os.getcwd()!r}, sqlite:////abs/name.db is absolute")
    if not read_only and created.driver == "pysqlite":  # let SQLite's DDL join transactions
        sa.event.listen(created, "connect", _sqlite_transactional_ddl)
        sa.event.listen(created, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    if read_only:
        sa.event.listen(created, "connect", _read_only(dialect))
        if dialect == "mysql":
            sa.event.listen(created, "do_connect", _single_statements)
    return created


def connect(eng: Any, url: str) -> Any:
    sa = sqlalchemy()
    try:
        return eng.connect()
    except sa.exc.DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        raise ConnectionFailedError(
            f"cannot connect to {redact_url(url)!r}: {redact_text(first, url)}; check that the "
            "server runs, the host, port, user, password and database name") from exc


def query_error(exc: Exception, sql: str, url: str) -> QueryError:
    """A :class:`QueryError` for ``exc``, quoting ``sql`` and the driver's first line."""
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    hint = ""
    body = re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.DOTALL).strip().rstrip(";")
    if ";" in body or re.search(r"multiple commands|one statement at a time|read-only|"
                                r"query_only|READ ONLY|readonly", first, re.IGNORECASE):
        hint = ("; read_sql runs exactly one read-only statement (a SELECT): no ';' between "
                "statements, nothing that writes")
    elif (re.search(r"(?<![:\w]):[A-Za-z_]\w*", body)
          and re.search(r'syntax|near ":|bindings', first, re.IGNORECASE)):
        hint = "; if ':name' is a placeholder, give its value in params= (read_sql(..., params={...}))"
    return QueryError(redact_text(f"the database rejected the query {sql[:200]!r}: {first}{hint}",
                                  url))


def split_table(table: str, db_schema: str | None) -> tuple[str | None, str]:
    """(schema, name) of ``table``: ``"sales.orders"`` is table ``orders`` in schema ``sales``
    unless ``db_schema`` is given, in which case ``table`` is taken whole, dots and all."""
    if not isinstance(table, str) or not table:
        raise InvalidArgumentError(f"table must be a non-empty table name, got {table!r}")
    if db_schema is not None:
        return db_schema, table
    schema, dot, name = table.partition(".")
    if not dot or not schema or not name:
        return None, table
    return schema, name


def zone_marker(zone: str) -> str:
    """The text datakiln stores with a zoned timestamp column to restore its zone on read."""
    return f"datakiln:tz={zone}"


def zone_from_marker(text: str | None) -> str | None:
    """The zone recorded by :func:`zone_marker` in a column comment or declared type."""
    match = _ZONE.search(text or "")
    return match.group(1) if match else None
