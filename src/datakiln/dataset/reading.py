"""``datakiln.read`` and ``datakiln.read_sql``: open a source as a lazy :class:`Dataset`.

They live here, not in :mod:`datakiln.io`, because sources know nothing of the layer
above them: :mod:`datakiln.io` builds a :class:`~datakiln.io.base.Source`, this module
wraps it in a Dataset. A database URL given to :func:`read` with ``table=`` or ``query=``
goes to :func:`read_sql`, so one call (and the CLI's ``--table`` / ``--query``) reads files
and databases alike.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from datakiln.dataset.dataset import Dataset
from datakiln.errors import InvalidArgumentError, UnsupportedFormatError
from datakiln.io import open_source
from datakiln.io._secrets import redact_url

log = logging.getLogger(__name__)

__all__ = ["read", "read_sql", "register_read_hook"]

PathLike = str | os.PathLike[str]

#: read-time hooks by keyword of :func:`read`: ``hook(open, **values) -> Dataset``. Layers
#: above this one (``privacy/``) register them, so a reader applying an access policy calls
#: down into a registered function and this module never imports the layer above.
_READ_HOOKS: dict[str, Callable[..., Dataset]] = {}
#: where a hook that is not registered yet lives: imported by name (never at import time of
#: this module) the first time its keyword is used; that module registers itself on import
_HOOK_PROVIDERS = {"policy": "datakiln.privacy.policy"}


def register_read_hook(keyword: str, hook: Callable[..., Dataset]) -> None:
    """Let :func:`read` hand a dataset to ``hook`` when ``keyword=`` is given.

    ``hook(open, **values)`` receives a function opening the dataset (so the hook can check
    its arguments first and govern what errors say) and the values of ``keyword`` (for
    ``"policy"``: ``policy=`` and ``role=``); it returns the dataset the caller gets.
    """
    _READ_HOOKS[keyword] = hook


def _read_hook(keyword: str) -> Callable[..., Dataset]:
    if keyword not in _READ_HOOKS and keyword in _HOOK_PROVIDERS:
        importlib.import_module(_HOOK_PROVIDERS[keyword])  # registers itself
    return _READ_HOOKS[keyword]


def _is_database_url(path: object) -> bool:
    from datakiln.io._sqlconn import is_database_url  # no SQLAlchemy needed to ask

    return is_database_url(path)


def read(
    path: PathLike | Sequence[PathLike],
    *,
    format: str | None = None,
    schema: Mapping[str, Any] | str | Path | None = None,
    memory_budget: int | str | None = None,
    table: str | None = None,
    query: str | None = None,
    policy: Any = None,
    role: str | None = None,
    engine: Any = None,
    **options: Any,
) -> Dataset:
    """Open files, a URL or a database table/query as a lazy :class:`~datakiln.Dataset`.

    Parameters
    ----------
    path : str, path, or list of them
        A file, directory (Parquet datasets, hive partitions), glob (``"data/*.csv"``), list
        of files sharing one schema, fsspec URL (``s3://``, ``gs://``, ``memory://``,
        ``file://``; the matching fsspec package must be installed), or a database URL
        (``postgresql://``, ``mysql://``, ``sqlite:///`` ...) together with ``table=`` or
        ``query=``.
    format : {"csv", "parquet", "json", "arrow", "xml"}, optional
        Needed only when the file endings do not tell.
    schema : dict or path, optional
        Column kind overrides, e.g. ``{"zip": "categorical"}`` or a JSON/YAML file.
    memory_budget : int or str, optional
        Default budget for streaming work on this dataset, e.g. ``"1GB"``.
    table, query : str, optional
        For a database URL: the table to read, or one SQL statement (see :func:`read_sql`,
        which also takes ``db_schema``, ``params`` and ``chunk_rows`` through ``options``).
    **options
        Format options. CSV: ``delimiter``, ``header``, ``names``, ``na_values``, ``trim``,
        ``encoding``, ``column_types``, ``on_bad_rows`` ("error" | "skip"),
        ``newlines_in_values``, ``quotechar`` (``None``: no quoting). XML (see
        :class:`datakiln.io.xml.XmlSource`): ``record`` (``"item"``, ``"channel/item"``),
        ``namespaces``, ``attribute_prefix``, ``column_types``, ``infer_records``.
        Parquet: ``partitioning``, ``decryption`` (a
        :class:`datakiln.privacy.DecryptionConfig` for files written with ``encryption=``).
    policy, role : path, dict or Policy; str, optional
        An access policy (YAML file, see :mod:`datakiln.privacy.policy`) and the role to read
        as: only the role's columns are read (projection pushed into the reader), its row
        filter is pushed down, masked columns are masked batch by batch, and every read is
        appended to the policy's audit log. The policy layer is reached through a hook
        (:func:`register_read_hook`), so this module does not import it.
    engine : {"local", "ray"} or engine object, optional
        Where the dataset's plans run: local threads (default, or the engine of an enclosing
        ``with datakiln.engine(...)``) or Ray tasks (``"ray"``: the same plan, the same
        results; needs the ``ray`` extra, see :mod:`datakiln.distributed.ray`).

    Examples
    --------
    >>> ds = datakiln.read("adult.csv", names=ADULT_COLUMNS)   # doctest: +SKIP
    >>> ds = datakiln.read("postgresql://me@db/sales", table="orders")  # doctest: +SKIP
    """
    if engine is not None:
        return read(path, format=format, schema=schema, memory_budget=memory_budget, table=table,
                    query=query, policy=policy, role=role, **options).with_engine(engine)
    if policy is not None or role is not None:
        def opened() -> Dataset:  # opened by the hook, so it governs errors that quote data
            return read(path, format=format, schema=schema, memory_budget=memory_budget,
                        table=table, query=query, **options)

        return _read_hook("policy")(opened, policy=policy, role=role)
    if table is not None or query is not None or _is_database_url(path):
        if not _is_database_url(path):
            raise InvalidArgumentError(
                f"table= and query= read a database, but {redact_url(str(path))!r} is not a "
                "database URL (e.g. 'postgresql://user@host/db', 'sqlite:///file.db')")
        if table is None and query is None:
            raise InvalidArgumentError(
                f"{redact_url(str(path))!r} is a database: say what to read with table='name' "
                "or query='SELECT ...' (on the command line: --table NAME or --query SQL)")
        misplaced = sorted({k for k, v in options.items() if v is not None}
                           - {"db_schema", "params", "chunk_rows"}
                           | ({"format"} if format is not None else set()))
        if misplaced:
            raise InvalidArgumentError(
                f"option(s) {misplaced} apply to files, not to the database "
                f"{redact_url(str(path))!r}; a database read takes table= or query=, and "
                "db_schema=, params=, chunk_rows=")
        options = {k: v for k, v in options.items() if v is not None}
        return read_sql(str(path), table=table, query=query, schema=schema,
                        memory_budget=memory_budget, **options)
    if isinstance(path, str) and (path == "-" or path.split("://")[0].lower() in ("redis", "rediss", "nats")):
        raise UnsupportedFormatError(f"{redact_url(path)!r} is a stream, which has no end: read it with "
                                     "datakiln.read_stream(...) (batches, windowed profile, online loader)")
    dataset = Dataset(open_source(path, format=format, **options), kinds=schema,
                      memory_budget=memory_budget)
    log.info("read %s as %s", dataset.source.name, type(dataset.source).__name__)
    return dataset


def read_sql(
    url: str,
    *legacy: Any,
    table: str | None = None,
    query: str | None = None,
    db_schema: str | None = None,
    params: Mapping[str, Any] | None = None,
    chunk_rows: int = 10_000,
    schema: Mapping[str, Any] | str | Path | None = None,
    memory_budget: int | str | None = None,
) -> Dataset:
    """Open a database table or one query as a lazy :class:`~datakiln.Dataset`.

    Parameters
    ----------
    url : str
        SQLAlchemy-style URL, with or without a driver (``postgresql://me@127.0.0.1/test``,
        ``mysql://root@127.0.0.1:3306/test``, ``sqlite:///file.db``).
    table : str
        A table to read whole. Always quoted as an identifier, never run as SQL, so any
        legal name works (quotes, spaces, non-ASCII letters). ``"sales.orders"`` means table
        ``orders`` in schema ``sales``; with ``db_schema`` given, ``table`` is the whole name.
    query : str
        Exactly one SQL statement returning rows, run as given (a trailing ``-- comment``
        is fine; ``;`` between statements is refused by the database). Values go in
        ``params`` as ``:name`` placeholders, never formatted into the string.
    db_schema : str, optional
        The database schema (MySQL: database) holding ``table``.
    params : dict, optional
        Bound values for the query's ``:name`` placeholders.
    chunk_rows : int
        Rows per fetch from the server-side cursor (default 10,000).
    schema : dict or path, optional
        Column kind overrides, as in :func:`read`.
    memory_budget : int or str, optional
        Default budget for streaming work on this dataset.

    Give exactly one of ``table`` and ``query``. Reads run in a read-only session
    (PostgreSQL, MySQL/MariaDB) or read-only mode (SQLite).

    Examples
    --------
    >>> ds = datakiln.read_sql("sqlite:///a.db", table="adult")  # doctest: +SKIP
    >>> ds = datakiln.read_sql("sqlite:///a.db", query="SELECT * FROM adult WHERE age > :age",
    ...                        params={"age": 30})  # doctest: +SKIP
    """
    from datakiln.io.sql import SqlSource

    if legacy or (isinstance(url, str) and "://" not in url and table is None and query is None):
        given = url if isinstance(url, str) else repr(url)
        keyword = "query" if not _looks_like_name(given) else "table"
        where = redact_url(str(legacy[0])) if legacy else "<database URL>"
        raise InvalidArgumentError(
            "read_sql takes the database URL first and the table or query by keyword, so a "
            f"table name is never run as SQL: call read_sql({where!r}, {keyword}={given[:80]!r})"
            + (" (or table=... for a table name)" if keyword == "query" else
               " (or query=... for a SQL statement)"))
    return Dataset(SqlSource(url, table=table, query=query, db_schema=db_schema, params=params,
                             chunk_rows=chunk_rows), kinds=schema, memory_budget=memory_budget)


def _looks_like_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.strip().split(".")) and " " not in text
