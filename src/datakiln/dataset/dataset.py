"""The lazy, immutable Dataset: a source plus a list of small operation records.

Every method that changes data returns a new Dataset; nothing is read until a result is
asked for (``head``, ``count``, ``iter_batches``, ``to_arrow``, ``write``, ``profile``).
Leading ``select``/``filter`` operations are pushed into the source (Parquet decodes
only those columns and row groups); the rest run per table on the executor's threads.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.dataset._executor import default_threads, ordered_map
from datakiln.dataset._identity import Unidentifiable, function_identity, source_identity, value_identity
from datakiln.errors import InvalidArgumentError, MemoryBudgetError, SchemaError, SourceError
from datakiln.io._secrets import redact_text
from datakiln.io.arrow import TableSource
from datakiln.io.base import Source
from datakiln.schema import Schema, infer_schema, load_overrides
from datakiln.units import format_bytes, parse_bytes

if TYPE_CHECKING:
    import pandas as pd

    from datakiln.dataset.loader import Loader
    from datakiln.dataset.profile import Profile
    from datakiln.io.write import WriteResult

__all__ = ["INFER_ROWS", "Dataset", "as_dataset", "engine"]

#: rows read from the start of the data to infer column kinds
INFER_ROWS = 10_000
#: rows a mapped dataset's functions run on to learn its output schema
PROBE_ROWS = 64


#: the engine a ``with datakiln.engine(...)`` block runs plans on (None: local threads)
_ENGINE: contextvars.ContextVar[Any] = contextvars.ContextVar("datakiln_engine", default=None)
#: where a named engine lives: imported on first use (never at import time), so this layer
#: never imports the one above it; the module's ``make_engine(**options)`` builds it
_ENGINE_PROVIDERS = {"ray": "datakiln.distributed.ray"}


def resolve_engine(name: Any, **options: Any) -> Any:
    """An engine object for ``name`` (``"local"``/None: None; ``"ray"``: a Ray engine)."""
    if name is None or name == "local":
        return None
    if not isinstance(name, str):
        return name  # an engine object already (has ``map_tables``)
    if name not in _ENGINE_PROVIDERS:
        raise InvalidArgumentError(f"engine must be 'local' or 'ray', got {name!r}")
    return importlib.import_module(_ENGINE_PROVIDERS[name]).make_engine(**options)


@contextlib.contextmanager
def engine(name: str = "ray", *, address: str | None = None, **options: Any) -> Iterator[Any]:
    """Run every dataset plan inside the block on ``name``'s engine.

    ``with datakiln.engine("ray"):`` lowers the same lazy plans (reads, ``map_batches``,
    the per-batch statistics of ``profile``, cleaning, the copula, evaluation, splits) to
    Ray tasks, results equal to the local run; ``address`` joins a running cluster
    (``"auto"``, ``"ray://host:10001"``), None starts or reuses a local Ray. ``"local"``
    forces the local thread pool. Needs the ``ray`` extra.
    """
    resolved = resolve_engine(name, address=address, **options)
    token = _ENGINE.set(resolved if resolved is not None else "local")
    try:
        yield resolved
    finally:
        _ENGINE.reset(token)


@dataclass(frozen=True)
class _Op:
    kind: str  # "select" | "filter" | "map" | "limit"
    arg: Any

    def describe(self) -> str:
        if self.kind == "map":
            name = getattr(self.arg, "__qualname__", repr(self.arg))
            return f"map({getattr(self.arg, '__module__', '')}.{name})"
        return f"{self.kind}({self.arg})"


def _apply(table: pa.Table, ops: Sequence[_Op]) -> pa.Table:
    for op in ops:
        if op.kind == "select":
            table = table.select(list(op.arg))
        elif op.kind == "filter":
            table = table.filter(op.arg)
        elif op.kind == "map":
            out = op.arg(table)
            table = _as_table(out, op.arg)
    return table


def _as_table(out: Any, fn: Any) -> pa.Table:
    if isinstance(out, pa.Table):
        return out
    if isinstance(out, pa.RecordBatch):
        return pa.Table.from_batches([out])
    if type(out).__name__ == "DataFrame":
        return pa.Table.from_pandas(out, preserve_index=False)
    if isinstance(out, dict):
        return pa.table(out)
    raise InvalidArgumentError(
        f"map_batches function {getattr(fn, '__qualname__', fn)!r} returned "
        f"{type(out).__name__}; return a pyarrow Table/RecordBatch, a pandas DataFrame or a "
        "dict of columns")


class Dataset:
    """A lazy, immutable table: a :class:`~datakiln.io.Source` plus operations.

    Build one with :func:`datakiln.read`, :func:`datakiln.read_sql`,
    :meth:`Dataset.from_arrow` or :meth:`Dataset.from_pandas`.

    Parameters
    ----------
    source : Source
        Where the rows come from.
    kinds : dict or path, optional
        Column kind overrides (see :func:`datakiln.schema.load_overrides`).
    memory_budget : int or str, optional
        Bytes that streaming work on this dataset may hold at once, e.g. ``"1GB"``;
        ``None`` uses ``threads + 2`` tasks in flight.
    num_threads : int, optional
        Worker threads (default: the usable CPU count).
    """

    def __init__(self, source: Source, ops: Sequence[_Op] = (), *,
                 kinds: Mapping[str, Any] | str | Path | None = None,
                 memory_budget: int | str | None = None, num_threads: int | None = None,
                 on_error: str = "raise", engine: Any = None) -> None:
        self._source = source
        self._ops = tuple(ops)
        self._kinds = load_overrides(kinds)
        self._memory_budget = parse_bytes(memory_budget)
        self._num_threads = num_threads
        if on_error not in ("raise", "skip"):
            raise InvalidArgumentError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self._on_error = on_error
        self._engine = resolve_engine(engine) if isinstance(engine, str) else engine
        self._arrow_schema: pa.Schema | None = None
        self._schema: Schema | None = None
        self._head: pa.Table | None = None

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def from_arrow(cls, table: pa.Table | pa.RecordBatch, **kwargs: Any) -> Dataset:
        """A dataset over an Arrow table already in memory."""
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        names = table.column_names
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:  # Arrow allows it; every lookup by name would fail later with a KeyError
            raise SchemaError(f"the table has the column(s) {repeated} more than once; give each "
                              "column its own name first (table.rename_columns([...]))")
        return cls(TableSource(table), **kwargs)

    @classmethod
    def from_pandas(cls, frame: pd.DataFrame, **kwargs: Any) -> Dataset:
        """A dataset over a pandas DataFrame (converted to Arrow once, index dropped)."""
        names = [str(c) for c in frame.columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise SchemaError(f"the DataFrame has the column(s) {repeated} more than once; give each "
                              "column its own name first (df.columns = [...])")
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            detail = "; ".join(str(a) for a in exc.args) if exc.args else str(exc)
            raise SchemaError(f"the DataFrame cannot be converted to Arrow ({detail}); a column of "
                              "mixed values (numbers and text in one object column) needs one type: "
                              "convert it first, e.g. df[col] = df[col].astype(str)") from exc
        return cls.from_arrow(table, **kwargs)

    def _derive(self, op: _Op | None = None, **changes: Any) -> Dataset:
        options = {"kinds": self._kinds, "memory_budget": self._memory_budget,
                   "num_threads": self._num_threads, "on_error": self._on_error,
                   "engine": self._engine, **changes}
        ops = self._ops + ((op,) if op else ())
        return Dataset(self._source, ops, **options)

    # -- description ------------------------------------------------------------------------
    @property
    def source(self) -> Source:
        """The source this dataset reads."""
        return self._source

    @property
    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema of the rows this dataset yields."""
        if self._arrow_schema is None:
            if any(op.kind == "map" for op in self._ops):  # run the plan on a few rows only
                probe = self._source.head(PROBE_ROWS)
                self._arrow_schema = _apply(probe, [op for op in self._ops if op.kind != "limit"]).schema
            else:
                schema = self._source.schema
                for op in self._ops:
                    if op.kind == "select":
                        schema = pa.schema([schema.field(c) for c in op.arg])
                self._arrow_schema = schema
        return self._arrow_schema

    @property
    def columns(self) -> list[str]:
        """Column names in order."""
        return list(self.arrow_schema.names)

    @property
    def schema(self) -> Schema:
        """Column kinds inferred from the first :data:`INFER_ROWS` rows, with overrides."""
        if self._schema is None:
            # a column a select dropped keeps its override silently; a name the data never had is
            # a typo in the schema file, which would leave the column's kind unset without a word
            unknown = sorted(k for k in self._kinds if k not in self.columns
                             and k not in self._source.schema.names)
            if unknown:
                raise SchemaError(f"the schema overrides name columns that do not exist: {unknown}; "
                                  f"the columns are {self.columns}")
            kinds = {k: v for k, v in self._kinds.items() if k in self.columns}
            self._schema = infer_schema(self._inference_sample(), kinds)
        return self._schema

    def _inference_sample(self) -> pa.Table:
        """The first :data:`INFER_ROWS` rows, read once and kept."""
        if self._head is None:
            self._head = self.head(INFER_ROWS)
        return self._head

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the content and the operations (see :mod:`datakiln.dataset._identity`).

        Equal wherever the data is equal (other processes, mount points, re-copied files);
        a ``map_batches`` function whose values cannot be identified counts by its name here,
        and :meth:`cache` asks for ``key=`` instead.
        """
        return self._fingerprint(strict=False)

    def _fingerprint(self, strict: bool = True) -> str:
        """The fingerprint; ``strict`` raises ``Unidentifiable`` for a function it cannot
        identify instead of using its name."""
        parts = [source_identity(self._source)]
        for op in self._ops:
            if op.kind == "map":
                try:
                    parts.append(f"map({function_identity(op.arg)})")
                except Unidentifiable:
                    if strict:
                        raise
                    parts.append(op.describe())
            elif op.kind == "filter":
                parts.append(f"filter({value_identity(op.arg)})")
            else:
                parts.append(op.describe())
        return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()

    @property
    def stats(self) -> dict[str, object]:
        """What reading has skipped so far (``on_bad_rows="skip"``): count and examples."""
        return self._source.stats.to_dict()

    def __repr__(self) -> str:
        ops = " → ".join(op.describe() for op in self._ops)
        return redact_text(f"Dataset({self._source.name!r}{' → ' + ops if ops else ''})")

    # -- operations -------------------------------------------------------------------------
    def select(self, columns: str | Sequence[str]) -> Dataset:
        """Keep ``columns``, in the order given."""
        names = [columns] if isinstance(columns, str) else list(columns)
        missing = [c for c in names if c not in self.columns]
        if missing:
            refuse = getattr(self._source, "refuse_columns", None)  # an access policy names them
            if refuse is not None:
                refuse(missing)
            raise SchemaError(f"select: no column(s) {missing}; the columns are {self.columns}")
        return self._derive(_Op("select", tuple(names)))

    def filter(self, expression: pc.Expression) -> Dataset:
        """Keep rows where ``expression`` (a pyarrow compute expression) is true.

        >>> ds.filter((pc.field("age") > 30) & (pc.field("sex") == "Female"))  # doctest: +SKIP
        """
        if not isinstance(expression, pc.Expression):
            raise InvalidArgumentError(
                f"filter takes a pyarrow compute expression such as pc.field('age') > 30, got "
                f"{type(expression).__name__}")
        try:
            pa.table({n: pa.array([], t) for n, t in zip(self.columns, self.arrow_schema.types)}
                     ).filter(expression)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise SchemaError(f"filter {expression} does not fit the columns {self.columns}: "
                              f"{exc}") from exc
        return self._derive(_Op("filter", expression))

    def map_batches(self, fn: Callable[[pa.Table], Any]) -> Dataset:
        """Apply ``fn`` to each table of rows; it returns a Table, RecordBatch, DataFrame or dict.

        ``fn`` runs on worker threads, several tables at once: it must not rely on order or
        shared mutable state.
        """
        if not callable(fn):
            raise InvalidArgumentError(f"map_batches takes a function, got {type(fn).__name__}")
        return self._derive(_Op("map", fn))

    def limit(self, rows: int) -> Dataset:
        """The first ``rows`` rows."""
        if rows < 0:
            raise InvalidArgumentError(f"limit must be zero or positive, got {rows}")
        return self._derive(_Op("limit", int(rows)))

    def with_kinds(self, kinds: Mapping[str, Any] | str | Path) -> Dataset:
        """The same rows with column kind overrides (dict or JSON/YAML file) added."""
        return self._derive(kinds={**self._kinds, **load_overrides(kinds)})

    def with_engine(self, engine: Any, **options: Any) -> Dataset:
        """The same plan run on ``engine`` (``"ray"``, ``"local"`` or an engine object)."""
        return self._derive(engine=resolve_engine(engine, **options) if isinstance(engine, str) else engine)

    def _current_engine(self) -> Any:
        """This dataset's engine, else the one of an enclosing ``datakiln.engine`` block."""
        if self._engine is not None:
            return self._engine
        current = _ENGINE.get()
        return None if current == "local" else current

    def to_ray(self) -> Any:
        """This dataset as a ``ray.data.Dataset`` of Arrow blocks (the plan runs as Ray tasks)."""
        return importlib.import_module(_ENGINE_PROVIDERS["ray"]).to_ray(self)

    def with_memory_budget(self, memory_budget: int | str | None) -> Dataset:
        """The same dataset with a new memory budget for its streaming work."""
        return self._derive(memory_budget=parse_bytes(memory_budget))

    # -- execution --------------------------------------------------------------------------
    def _pushdown(self) -> tuple[Sequence[str] | None, pc.Expression | None, list[_Op]]:
        """Leading select/filter operations for the source; the rest run per table."""
        columns, condition = None, None
        for index, op in enumerate(self._ops):
            if op.kind == "select":
                columns = list(op.arg)
            elif op.kind == "filter":
                condition = op.arg if condition is None else condition & op.arg
            else:
                return columns, condition, list(self._ops[index:])
        return columns, condition, []

    def _in_flight(self, budget: int | None) -> tuple[int, int]:
        threads = self._num_threads or default_threads()
        if budget is None:
            return threads, threads + 2
        task_bytes = self._source.task_bytes()
        # a task holds its raw bytes, the decoded table and per-batch temporaries: count 4x
        slots = int(budget // (4 * task_bytes))
        if slots < 1:
            raise MemoryBudgetError(
                f"one read task of {self._source.name!r} needs about {format_bytes(4 * task_bytes)} "
                f"({format_bytes(task_bytes)} of data, held raw and decoded with its temporaries) "
                f"but the memory budget is {format_bytes(budget)}; raise the budget or rewrite "
                "the data in smaller pieces (kiln convert --rows-per-file / smaller row groups)")
        return min(threads, slots), min(threads + 2, slots)

    def _tables(self, fn: Callable[[pa.Table], Any] | None = None,
                memory_budget: int | None = None) -> Iterator[Any]:
        """Run the plan; yield ``fn(table)`` (or tables) in order, ``fn`` on worker threads."""
        columns, condition, rest = self._pushdown()
        segments: list[list[_Op]] = [[]]
        limits: list[int] = []
        for op in rest:
            if op.kind == "limit":
                limits.append(op.arg)
                segments.append([])
            else:
                segments[-1].append(op)
        first, later = segments[0], segments[1:]
        tail_fn = fn if not limits else None

        def work(table: pa.Table) -> Any:
            table = _apply(table, first)
            return tail_fn(table) if tail_fn is not None else table

        threads, in_flight = self._in_flight(memory_budget or self._memory_budget)
        tasks = self._source.read_tasks(columns, condition)
        if self._on_error == "skip":
            tasks = self._skipping(tasks, columns)
        runner = self._current_engine()
        if runner is not None:  # the same tasks and functions as Ray tasks, results in order
            stream = runner.map_tables(self._source, tasks, work, in_flight=in_flight,
                                       budgeted=(memory_budget or self._memory_budget) is not None)
        else:
            stream = ordered_map(tasks, work, threads=threads, in_flight=in_flight)
        if not limits:
            yield from stream
            return
        yield from (fn(t) if fn is not None else t for t in self._limited(stream, limits, later))

    def _skipping(self, tasks: Iterator[Any], columns: Sequence[str] | None) -> Iterator[Any]:
        """Read tasks whose unreadable pieces (a corrupt file, a bad chunk) are skipped and
        counted in ``stats`` instead of stopping the pass."""
        schema = self._source.schema
        empty = (schema if columns is None else pa.schema([schema.field(c) for c in columns])).empty_table()
        stats = self._source.stats
        stats.reset()  # like the readers: the counts describe the latest pass

        def guarded(task: Any) -> Any:
            def run() -> pa.Table:
                try:
                    return task()
                except SourceError as exc:
                    stats.record(self._source.name, None, f"{type(exc).__name__}: {exc}")
                    return empty
            return run

        try:
            for task in tasks:
                yield guarded(task)
        finally:
            close = getattr(tasks, "close", None)
            if close is not None:
                close()

    def with_on_error(self, on_error: str) -> Dataset:
        """The same dataset, with unreadable pieces skipped and counted (``"skip"``) or
        raised (``"raise"``, the default). A source that can skip single rows (image
        files, shard samples: ``source.with_on_error``) does so itself, so one bad file
        never costs the other rows of its read task."""
        per_row = getattr(self._source, "with_on_error", None)
        if per_row is not None:
            return Dataset(per_row(on_error), self._ops, kinds=self._kinds,
                           memory_budget=self._memory_budget, num_threads=self._num_threads,
                           on_error=on_error, engine=self._engine)
        return self._derive(on_error=on_error)

    @staticmethod
    def _limited(stream: Iterator[pa.Table], limits: list[int],
                 later: list[list[_Op]]) -> Iterator[pa.Table]:
        remaining = list(limits)
        try:
            for table in stream:
                for stage, ops in enumerate(later):
                    table = table.slice(0, remaining[stage])
                    remaining[stage] -= table.num_rows
                    table = _apply(table, ops)
                if table.num_rows:
                    yield table
                if any(r <= 0 for r in remaining):
                    return
        finally:
            stream.close()  # type: ignore[attr-defined]

    def _first_table(self) -> pa.Table:
        with contextlib.closing(self._tables()) as tables:
            for table in tables:
                return table
        return _apply(self._source.schema.empty_table(), [o for o in self._ops if o.kind != "limit"])

    def iter_batches(self, batch_rows: int | None = None) -> Iterator[pa.RecordBatch]:
        """Stream the rows as Arrow record batches of ``batch_rows`` rows (last may be short).

        ``None`` yields batches as the source produces them (fastest).
        """
        if batch_rows is not None and batch_rows <= 0:
            raise InvalidArgumentError(f"batch_rows must be positive, got {batch_rows}")
        pending: list[pa.Table] = []
        have = 0
        for table in self._tables():
            if batch_rows is None:
                yield from table.to_batches()
                continue
            pending.append(table)
            have += table.num_rows
            while have >= batch_rows:
                joined = pa.concat_tables(pending)
                yield from joined.slice(0, batch_rows).combine_chunks().to_batches()
                rest = joined.slice(batch_rows)
                pending, have = [rest], rest.num_rows
        if batch_rows is not None and have:
            yield from pa.concat_tables(pending).combine_chunks().to_batches()

    def head(self, rows: int = 5) -> pa.Table:
        """The first ``rows`` rows as an Arrow table (reads only what it needs)."""
        if not self._ops and self._on_error == "raise":
            return self._source.head(rows)
        return self.limit(rows).to_arrow()

    def count(self) -> int:
        """Number of rows; from metadata when the format has it and nothing filters rows."""
        if all(op.kind == "select" for op in self._ops):
            return self._source.count_rows()
        return sum(self._tables(lambda t: t.num_rows))

    def to_arrow(self) -> pa.Table:
        """All rows as one Arrow table (in memory)."""
        columns, condition, rest = self._pushdown()
        if not rest and self._on_error == "raise":
            return self._source.read_all(columns, condition)
        tables = list(self._tables())
        return pa.concat_tables(tables) if tables else self._first_table().slice(0, 0)

    def to_pandas(self) -> pd.DataFrame:
        """All rows as a pandas DataFrame (in memory)."""
        return self.to_arrow().to_pandas()

    def write(self, path: str | os.PathLike[str], *, format: str | None = None,
              partition_by: Sequence[str] | None = None, rows_per_file: int | None = None,
              compression: str = "zstd",
              on_progress: Callable[[int], None] | None = None,
              overwrite: bool = False, encryption: Any = None) -> WriteResult:
        """Write the rows atomically as Parquet (zstd), CSV or JSON Lines (image rows also as
        ``format="imagefolder"``, one folder per label, or ``"tar"`` WebDataset shards).

        One file by default; a directory of ``part-NNNNN`` shards (and the manifest
        ``_datakiln.json``) with ``rows_per_file``; hive ``key=value`` directories with
        ``partition_by``. ``on_progress(rows)`` is called after each table written.
        ``format`` defaults to the one the path's ending names (``.csv``, ``.jsonl``), else
        Parquet; a single file whose ending names another format is refused.

        datakiln's own earlier output at ``path`` is replaced; a file it did not write
        only with ``overwrite=True``. A directory holding files datakiln did not write, or
        a path that is or contains this dataset's input, raises ``OutputExistsError``.

        ``encryption`` (:class:`datakiln.privacy.EncryptionConfig`) encrypts the output:
        Parquet with modular encryption (column and footer keys), CSV and JSON Lines in the
        AES-256-GCM envelope; read it back with ``datakiln.read(path, decryption=...)``
        (Parquet) or ``kiln decrypt``.
        """
        from datakiln.io.write import format_for, source_inputs, write_tables

        if format in ("imagefolder", "tar"):  # encoded images: OUT/<class>/NNNNNNNN.png or tar shards
            from datakiln.io.image_folder import write_images

            return write_images(self._tables(), path, format=format, rows_per_file=rows_per_file,
                                on_progress=on_progress, overwrite=overwrite,
                                inputs=source_inputs(self._source))
        return write_tables(self._tables(), self.arrow_schema, path, format=format_for(path, format),
                            partition_by=partition_by, rows_per_file=rows_per_file,
                            compression=compression, on_progress=on_progress,
                            overwrite=overwrite, inputs=source_inputs(self._source),
                            encryption=encryption)

    def write_sql(self, table: str, url: str, *, if_exists: str = "fail",
                  chunk_rows: int = 10_000) -> int:
        """Insert the rows into database table ``table`` (created from the Arrow types)."""
        from datakiln.io.sql import write_sql

        return write_sql(self._tables(), table, url, schema=self.arrow_schema,
                         if_exists=if_exists, chunk_rows=chunk_rows)

    def cache(self, path: str | os.PathLike[str] | None = None, *, key: str | None = None,
              refresh: bool = False, cache_dir: str | os.PathLike[str] | None = None,
              cache_limit: str | int | None = "20GB") -> Dataset:
        """A local, memory-mapped Arrow copy, reused while the content is unchanged.

        Convert once, then shuffle and load at random: ``ds.cache("train.arrow").loader(...)``.

        Parameters
        ----------
        path : str or path, optional
            The Arrow IPC file to write (a ``<path>.json`` sidecar records its key). Without
            it the copy goes into the shared cache directory (``cache_dir``, else
            ``$DATAKILN_CACHE_DIR``, else ``~/.cache/datakiln``), locked while in use.
        key : str, optional
            Your name for the data's state, for what has no content identity: a SQL query
            (``key="snapshot-2024-06-01"``) or a ``map_batches`` function holding a fitted
            model. Change it when the data changes. Required there; otherwise the key is the
            content fingerprint (files, table buffers, function code and values).
        refresh : bool
            Rebuild even if a cache with the same key exists.
        cache_dir, cache_limit : path, str or int
            Without ``path``: the shared directory and its byte limit (default ``"20GB"``);
            the least recently used entries not in use are evicted past it. Hit and miss
            counts: ``datakiln.dataset.cache.cache_stats(cache_dir)``.
        """
        from datakiln.dataset.cache import cache_dataset, cache_in_store

        if path is None:
            return cache_in_store(self, key=key, refresh=refresh, cache_dir=cache_dir,
                                  cache_limit=cache_limit)
        return cache_dataset(self, path, key=key, refresh=refresh)

    def loader(self, batch_size: int, *, columns: Sequence[str] | None = None,
               shuffle: bool = True, seed: int = 0, drop_last: bool = False,
               format: str = "numpy", prefetch: int = 2, num_threads: int | None = None,
               rank: int = 0, world_size: int = 1, memory_budget: int | str | None = None,
               on_error: str = "raise", pin_memory: bool = False,
               on_progress: Callable[[int], None] | None = None,
               even_batches: str | None = None, key: str | None = None, transform: Any = None,
               image_size: int | tuple[int, int] | None = None, image_mode: str = "RGB",
               on_params: Callable[[dict[str, Any]], None] | None = None,
               text_column: str | None = None, tokenizer: Any = None, pad_to: str | int = "longest",
               bucket_by_length: bool | str = False) -> Loader:
        """Batches for training: shuffled, sharded over ranks, prefetched, exactly resumable.

        Parameters
        ----------
        batch_size : int
            Rows per batch.
        shuffle, seed : bool, int
            Exact global shuffle; the order is a pure function of (seed, epoch, fingerprint),
            the fingerprint coming from content (equal in every process and on every mount).
        drop_last : bool
            Drop the final partial step (``world_size × batch_size`` positions) of every epoch.
        even_batches : {"pad", "spread"}, optional
            The final partial step: ``"pad"`` (default when ``world_size > 1``, PyTorch
            ``DistributedSampler``'s way) repeats the epoch's first rows so every rank gets the
            same number of full batches; ``"spread"`` (default for one rank) deals its rows
            evenly, each row exactly once, and a rank left without a row gets one batch fewer.
            Never a 0-row batch.
        key : str, optional
            Stands for the dataset's content in the order instead of its fingerprint.
        format : {"numpy", "arrow", "pandas", "torch"}
            Dict of NumPy arrays (categories as int64 codes, see ``loader.categories``),
            an Arrow RecordBatch, a pandas DataFrame, or a dict of torch tensors.
        prefetch, num_threads : int
            Batches assembled ahead of use, on this many threads (default: cores + 1; one per
            core for images, whose decoding waits on no I/O).
        rank, world_size : int
            This process's shard; ranks never overlap (see ``even_batches``).
        on_error : {"raise", "skip"}
            Unreadable pieces of the source (a corrupt file) stop loading or are skipped and
            counted in ``ds.stats`` while the rows are gathered.
        pin_memory : bool
            With ``format="torch"``, page-locked tensors for fast host-to-GPU copies (needs CUDA).
        transform : datakiln.augment op, optional
            Image datasets (a column of encoded images, ``{bytes, path}`` structs or uint8
            tensors): augmentation applied to each batch on the loader's threads, with
            per-sample parameters keyed by ``(seed, epoch, row id)`` so a row is augmented the
            same whatever the batch size, threads, workers or rank. The image column comes as
            ``N×H×W×C`` (numpy) or ``N×C×H×W`` (torch), uint8 or float32 after ``Normalize``;
            ``label`` as int64 codes, or float32 ``(N, classes)`` after MixUp/CutMix.
        image_size : int or (height, width), optional
            Resize every image to this size as it is decoded (JPEGs scaled in the DCT domain
            first); without a transform, images of mixed sizes need it.
        image_mode : {"RGB", "L", "RGBA"}
            Channels of the decoded images (default RGB).
        on_params : callable, optional
            Called with each delivered batch's record ``{"batch", "epoch", "row_ids",
            "params"}`` (also kept as ``loader.last_params``); ``transform.apply`` replays it.
            Both live in the process that assembles the batch (a DataLoader worker's copy of the
            loader when ``num_workers > 0``).
        text_column, tokenizer : str, callable, optional
            Text batches: the column's texts (augmented by a ``transform`` of text ops, keyed
            as above) go through ``tokenizer`` (text → token ids) into ``input_ids`` and
            ``attention_mask`` (int64 ``N×L``, pad id 0); the other columns come as usual.
        pad_to : "longest" or int
            Pad to the batch's longest text (default) or pad/truncate to a fixed length.
        bucket_by_length : bool or {"tokens", "chars"}
            Batch texts of similar length (50 batches sorted by length at a time, dealt in a
            keyed order): less padding, order and resume still exact. ``True`` measures in
            tokens (one more tokeniser call per row), ``"chars"`` in characters.

        >>> loader = ds.cache("train.arrow").loader(4096, seed=0)          # doctest: +SKIP
        >>> for epoch in range(3):                                          # doctest: +SKIP
        ...     loader.set_epoch(epoch)
        ...     for batch in loader: ...
        """
        from datakiln.dataset.loader import Loader

        source = self if on_error == "raise" else self.with_on_error(on_error)
        return Loader(source, batch_size, columns=None if columns is None else list(columns),
                      shuffle=shuffle, seed=seed, drop_last=drop_last, format=format,
                      prefetch=prefetch, num_threads=num_threads, rank=rank,
                      world_size=world_size, memory_budget=memory_budget or self._memory_budget,
                      pin_memory=pin_memory, on_progress=on_progress,
                      even_batches=even_batches, key=key, transform=transform,
                      image_size=image_size, image_mode=image_mode, on_params=on_params,
                      text_column=text_column, tokenizer=tokenizer, pad_to=pad_to,
                      bucket_by_length=bucket_by_length)

    def profile(self, *, memory_budget: int | str | None = "1GB", top_k: int = 10,
                sample_rows: int = 65_536, seed: int = 0,
                on_progress: Callable[[int], None] | None = None) -> Profile:
        """Streaming per-column statistics (see :func:`datakiln.dataset.profile.profile`)."""
        from datakiln.dataset.profile import profile

        return profile(self, memory_budget=memory_budget, top_k=top_k, sample_rows=sample_rows,
                       seed=seed, on_progress=on_progress)


def as_dataset(data: Any, *, what: str = "this") -> Dataset:
    """``data`` as a Dataset: a Dataset as is, an Arrow table/batch or pandas frame wrapped."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return Dataset.from_arrow(data)
    if type(data).__name__ == "DataFrame":
        return Dataset.from_pandas(data)
    if getattr(data, "is_stream", False):  # a StreamDataset has no end: it says so itself
        data.refuse(what)
    raise InvalidArgumentError(
        f"{what} takes a datakiln Dataset, a pyarrow Table or a pandas DataFrame, got "
        f"{type(data).__name__}")
