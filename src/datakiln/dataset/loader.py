"""The loader: shuffled, sharded, prefetched, exactly resumable batches.

Order is a pure function of ``(seed, epoch, dataset fingerprint)``: position ``p`` of an
epoch reads row ``permute(p, n, key)`` (a keyed bijection, no permutation array). Each
step of the epoch takes ``world_size × batch_size`` positions and rank ``r`` gets the
``r``-th slice, so ranks never overlap; the final, partial step is spread as evenly as
possible (every rank still gets the same number of batches, the last ones differing by
at most one row) or dropped with ``drop_last``. The resume state is just ``(epoch,
batches consumed)``.

Rows are gathered chunk by chunk with NumPy fancy indexing and Arrow ``take`` on
background threads (both release the GIL) from random-access storage: a memory-mapped
Arrow file (``Dataset.cache``) or a table in memory; batches prefetched ahead are capped
at a quarter of the memory budget in bytes. Nothing runs per sample in Python. Sources that
cannot be read at random and do not fit the budget are streamed instead: shuffled block
order plus a shuffle buffer (:mod:`datakiln.dataset._stream`), dealt to ranks the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import mmap
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
from pyarrow.fs import LocalFileSystem

from datakiln.dataset._executor import ordered_map
from datakiln.dataset._permute import permute
from datakiln.errors import InvalidArgumentError, MemoryBudgetError
from datakiln.io.arrow import ArrowFileSource, TableSource
from datakiln.units import format_bytes, parse_bytes

if TYPE_CHECKING:
    from datakiln.dataset.dataset import Dataset

__all__ = ["FORMATS", "Loader"]

FORMATS = ("numpy", "arrow", "pandas", "torch")
#: batches whose row numbers are computed in one vectorised call
BLOCK_BATCHES = 64


@dataclass
class LoaderStats:
    """Progress of the current epoch: batches and rows delivered, timing."""

    batches: int = 0
    rows: int = 0
    seconds: float = 0.0
    first_batch_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        rate = self.rows / self.seconds if self.seconds else 0.0
        return {"batches": self.batches, "rows": self.rows, "seconds": round(self.seconds, 4),
                "rows_per_second": round(rate, 1), "first_batch_seconds": self.first_batch_seconds}


def _mapped(path: str, populate: bool) -> pa.Table:
    """An Arrow IPC file memory-mapped read-only; ``populate`` pre-faults every page at once
    (one sequential pass) instead of one page fault per random row later."""
    with open(path, "rb") as handle:
        flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if populate else 0)
        mapping = mmap.mmap(handle.fileno(), 0, flags=flags, prot=mmap.PROT_READ)
    return ipc.open_file(pa.BufferReader(pa.py_buffer(mapping))).read_all()


def _random_access_table(dataset: Dataset, budget: int | None) -> pa.Table | None:
    """The dataset's rows as a table that supports cheap random ``take``."""
    source = dataset.source
    plain = not dataset._ops
    if plain and isinstance(source, ArrowFileSource):
        if isinstance(source.files.filesystem, LocalFileSystem):
            populate = budget is None or source.files.total_bytes <= budget
            return pa.concat_tables([_mapped(path, populate) for path in source.files.paths])
        return pa.concat_tables([reader.read_all() for reader in source._readers])
    if plain and isinstance(source, TableSource):
        return source.table
    estimate = source.estimate_size().bytes
    if budget is not None and estimate is not None and estimate > budget:
        return None  # too big to hold and not random-access: stream it instead
    return dataset.to_arrow()


class Loader:
    """Iterable of batches; see :meth:`datakiln.Dataset.loader` for the parameters."""

    def __init__(self, dataset: Dataset, batch_size: int, *, columns: list[str] | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 format: str = "numpy", prefetch: int = 2, num_threads: int | None = None,
                 rank: int = 0, world_size: int = 1, memory_budget: int | str | None = None,
                 pin_memory: bool = False, on_progress: Callable[[int], None] | None = None) -> None:
        if batch_size <= 0:
            raise InvalidArgumentError(f"batch_size must be positive, got {batch_size}")
        if world_size <= 0 or not 0 <= rank < world_size:
            raise InvalidArgumentError(f"need 0 <= rank < world_size, got rank={rank}, "
                                       f"world_size={world_size}")
        if format not in FORMATS:
            raise InvalidArgumentError(f"format must be one of {FORMATS}, got {format!r}")
        self._order_fingerprint = dataset.fingerprint  # the order ignores the column choice
        if columns is not None:
            dataset = dataset.select(columns)
        self.dataset = dataset
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.format, self.prefetch = drop_last, format, max(0, prefetch)
        self.num_threads, self.rank, self.world_size = num_threads, rank, world_size
        self.memory_budget = parse_bytes(memory_budget)
        self.on_progress = on_progress
        self.pin_memory = pin_memory
        if pin_memory:
            if format != "torch":
                raise InvalidArgumentError("pin_memory=True needs format='torch'")
            from datakiln.integrations.torch import check_pinning

            check_pinning()
        self.epoch = 0
        self._skip = 0
        self._stats = LoaderStats()
        table = _random_access_table(dataset, self.memory_budget)
        self.streaming = table is None
        if table is None:  # block shuffle + buffer (see datakiln.dataset._stream)
            self.rows = dataset.count()
            self._buffer_rows = self._stream_buffer_rows()
            self.categories = self._categories(dataset.select(self._categorical(dataset.arrow_schema)))
            self._gather = None
        else:
            self.rows = table.num_rows
            fits = self.memory_budget is None or table.nbytes <= self.memory_budget // 2
            contiguous = bool(table.num_columns) and fits and table.column(0).num_chunks > 1
            self.categories = self._categories(table)
            self._gather = _Gather(table, self.categories, contiguous=contiguous)
        self._blocks: dict[tuple[int, int], dict[int, np.ndarray]] = {}
        self._block_lock = threading.Lock()

    # -- order -----------------------------------------------------------------------------
    def _key(self) -> int:
        text = f"{self.seed}:{self.epoch}:{self._order_fingerprint}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")

    def _steps(self) -> tuple[int, int]:
        """(full steps, rows in the final partial step) of one epoch."""
        step = self.batch_size * self.world_size
        return divmod(self.rows, step)

    def __len__(self) -> int:
        full, rest = self._steps()
        return full + (1 if rest and not self.drop_last else 0)

    def _positions(self, batch: int) -> np.ndarray:
        """Epoch positions of this rank's ``batch``-th batch."""
        full, rest = self._steps()
        step = self.batch_size * self.world_size
        if batch < full:
            start = batch * step + self.rank * self.batch_size
            return np.arange(start, start + self.batch_size, dtype=np.int64)
        share, extra = divmod(rest, self.world_size)  # the last step, spread evenly
        start = full * step + self.rank * share + min(self.rank, extra)
        return np.arange(start, start + share + (1 if self.rank < extra else 0), dtype=np.int64)

    def indices(self, batch: int) -> np.ndarray:
        """Row numbers of this rank's ``batch``-th batch in the current epoch."""
        if not self.shuffle:
            return self._positions(batch)
        key = (self.epoch, batch // BLOCK_BATCHES)
        with self._block_lock:  # one vectorised permutation for a block of batches
            block = self._blocks.get(key)
            if block is None:
                numbers = range(key[1] * BLOCK_BATCHES, min((key[1] + 1) * BLOCK_BATCHES, len(self)))
                positions = [self._positions(b) for b in numbers]
                flat = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
                rows = permute(flat.astype(np.uint64), self.rows, self._key()).astype(np.int64)
                cuts = np.cumsum([p.size for p in positions])[:-1]
                block = dict(zip(numbers, np.split(rows, cuts)))
                # keep this block and the one before: threads may straddle a block boundary
                self._blocks = {k: v for k, v in self._blocks.items() if k == (key[0], key[1] - 1)}
                self._blocks[key] = block
        return block[batch]

    # -- epochs and resume ---------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (each has its own order); restarts it from the beginning."""
        self.epoch, self._skip = int(epoch), 0

    def state_dict(self) -> dict[str, Any]:
        """``{"epoch", "batches", "samples"}`` of this rank: enough to resume exactly."""
        return {"epoch": self.epoch, "batches": self._skip, "samples":
                int(sum(self._positions(b).size for b in range(self._skip)))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume where ``state`` stopped (same seed, batch size and world size)."""
        self.epoch, self._skip = int(state["epoch"]), int(state["batches"])

    def stats(self) -> dict[str, Any]:
        """Batches, rows, seconds, rows/s and time to first batch of the current pass."""
        return self._stats.to_dict()

    # -- batches ---------------------------------------------------------------------------
    def _categorical(self, schema: pa.Schema) -> list[str]:
        """Text columns whose kind is categorical (or boolean): loaded as integer codes."""
        kinds = self.dataset.schema
        return [f.name for f in schema if kinds[f.name].kind in ("categorical", "boolean") and (
            pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_dictionary(f.type))]

    def _categories(self, data: Any) -> dict[str, list[Any]]:
        """Sorted categories of each categorical column (one streaming pass for a Dataset)."""
        tables = [data] if isinstance(data, pa.Table) else data._tables()
        names = self._categorical(data.schema if isinstance(data, pa.Table) else data.arrow_schema)
        seen: dict[str, set[Any]] = {name: set() for name in names}
        for table in tables:
            for name in names:
                values = table[name]
                if pa.types.is_dictionary(values.type):
                    values = values.cast(values.type.value_type)
                seen[name].update(pc.unique(values.drop_null()).to_pylist())
        return {name: sorted(values) for name, values in seen.items()}

    def _stream_buffer_rows(self) -> int:
        """Rows the shuffle buffer may hold: a quarter of the budget (default 1,000,000)."""
        sample = self.dataset._inference_sample()
        row_bytes = max(1.0, sample.nbytes / max(sample.num_rows, 1))
        step = self.batch_size * self.world_size
        if self.memory_budget is None:
            return max(step, 1_000_000)
        rows = int(self.memory_budget // 4 // row_bytes)
        if rows < step:
            raise MemoryBudgetError(
                f"a shuffle buffer of one step ({step:,} rows × {row_bytes:.0f} bytes) does not fit a "
                f"quarter of the memory budget {format_bytes(self.memory_budget)}; raise it or use "
                "ds.cache(...) for exact random access")
        return rows

    def _in_flight(self) -> int:
        """Batches assembled ahead: ``prefetch`` + threads, capped so that they take at most
        a quarter of the memory budget (in bytes)."""
        wanted = self.prefetch + (self.num_threads or 2)
        if self.memory_budget is None or self._gather is None or not self.rows:
            return wanted
        batch_bytes = max(1, self._gather.table.nbytes // self.rows * self.batch_size)
        return max(1, min(wanted, self.memory_budget // 4 // batch_bytes))

    def _stream_batches(self, wanted: set[int]) -> Iterator[Any]:
        """This rank's batches from the shuffled stream: step ``b`` of the epoch is batch ``b``."""
        from datakiln.dataset._stream import shuffled_stream

        step_rows = self.batch_size * self.world_size
        stream = shuffled_stream(self.dataset, self._key(), self._buffer_rows,
                                 shuffle=self.shuffle, threads=self.num_threads)
        pending: list[pa.Table] = []
        held, batch = 0, 0

        def emit(rows: pa.Table, number: int) -> Any:
            local = self._positions(number) - number * step_rows
            return self._convert(rows.take(pa.array(local)))

        for table in stream:
            pending.append(table)
            held += table.num_rows
            while held >= step_rows and batch < len(self):
                joined = pa.concat_tables(pending)
                if batch in wanted:
                    yield emit(joined.slice(0, step_rows), batch)
                pending, held, batch = [joined.slice(step_rows)], held - step_rows, batch + 1
        if held and batch < len(self) and batch in wanted:
            yield emit(pa.concat_tables(pending), batch)

    def _convert(self, rows: pa.Table) -> Any:
        """A gathered table in the loader's format."""
        if self.format in ("arrow", "pandas"):
            rows = rows.combine_chunks()
            return rows.to_pandas() if self.format == "pandas" else (
                rows.to_batches()[0] if rows.num_rows else pa.RecordBatch.from_pylist([], schema=rows.schema))
        arrays = _Gather(rows, self.categories, contiguous=True).arrays(np.arange(rows.num_rows))
        if self.format == "torch":
            from datakiln.integrations.torch import to_tensors

            return to_tensors(arrays, pin_memory=self.pin_memory)
        return arrays

    def _assemble(self, batch: int) -> Any:
        indices = self.indices(batch)
        if self.format in ("arrow", "pandas"):
            rows = self._gather.rows(indices)
            return rows.to_pandas() if self.format == "pandas" else (
                rows.to_batches()[0] if rows.num_rows else pa.RecordBatch.from_pylist([], schema=rows.schema))
        arrays = self._gather.arrays(indices)
        if self.format == "torch":
            from datakiln.integrations.torch import to_tensors

            return to_tensors(arrays, pin_memory=self.pin_memory)
        return arrays

    def __iter__(self) -> Iterator[Any]:
        return self._iter_shard(0, 1)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._async_batches()

    async def _async_batches(self) -> AsyncIterator[Any]:
        """``async for batch in loader``: each batch is awaited off the event loop."""
        batches, done = iter(self), object()
        while (batch := await asyncio.to_thread(next, batches, done)) is not done:
            yield batch

    def torch_dataset(self) -> Any:
        """This loader as a torch ``IterableDataset`` for ``DataLoader(batch_size=None,
        num_workers=k)`` (see :mod:`datakiln.integrations.torch`)."""
        from datakiln.integrations.torch import iterable_dataset

        return iterable_dataset(self)

    def torch_map_dataset(self) -> Any:
        """The loader's rows as a map-style torch ``Dataset`` with a vectorised
        ``__getitems__`` (see :mod:`datakiln.integrations.torch`)."""
        from datakiln.integrations.torch import map_dataset

        return map_dataset(self)

    def _iter_shard(self, worker: int, workers: int) -> Iterator[Any]:
        """Batches ``skip + worker, skip + worker + workers, ...`` of the epoch, in order."""
        started = time.perf_counter()
        self._stats = LoaderStats()
        first = self._skip
        numbers = range(first + worker, len(self), workers)
        if self.streaming:
            batches = self._stream_batches(set(numbers))
        else:
            tasks = (lambda b=b: self._assemble(b) for b in numbers)
            batches = ordered_map(tasks, None, threads=self.num_threads, in_flight=self._in_flight())
        for index, batch in zip(numbers, batches):
            self._skip = index + 1
            size = len(batch) if self.format in ("pandas", "arrow") else (
                len(next(iter(batch.values()))) if batch else 0)
            self._stats.batches += 1
            self._stats.rows += size
            self._stats.seconds = time.perf_counter() - started
            if self._stats.first_batch_seconds is None:
                self._stats.first_batch_seconds = round(self._stats.seconds, 4)
            if self.on_progress is not None:
                self.on_progress(size)
            yield batch
        self._skip = 0  # the epoch is complete: the next pass starts it afresh


class _Gather:
    """Random-row gathers from a (possibly chunked, memory-mapped) table, chunk by chunk.

    Arrow's ``take`` on a chunked column concatenates the chunks first (a copy of the whole
    column per batch), so rows are grouped by chunk and gathered from each chunk's own
    buffer: NumPy fancy indexing on zero-copy views for numbers without nulls, category
    codes computed once, Arrow ``take`` on single chunks for the rest.
    """

    def __init__(self, table: pa.Table, categories: dict[str, list[Any]], *,
                 contiguous: bool = False) -> None:
        if contiguous:  # fits the budget: one buffer per column, one gather per batch
            table = table.combine_chunks()
        self.table = table
        self.names = table.column_names
        first = table.column(0) if table.num_columns else pa.chunked_array([], pa.null())
        lengths = [len(chunk) for chunk in first.chunks]
        self.starts = np.cumsum([0, *lengths])[:-1].astype(np.int64)
        self.views: dict[str, list[np.ndarray]] = {}
        self._codes: set[str] = set()
        for name in self.names:
            column = table[name]
            dtype = column.type
            if name in categories:
                lookup = pa.array(categories[name], type=pa.string())
                self.views[name] = [  # int32 codes: 4 bytes a row, computed once
                    pc.fill_null(pc.index_in(chunk.cast(dtype.value_type) if pa.types.is_dictionary(dtype)
                                             else chunk, value_set=lookup), -1).to_numpy()
                    for chunk in column.chunks]
                self._codes.add(name)
            elif column.null_count == 0 and (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
                                             or pa.types.is_temporal(dtype) or pa.types.is_boolean(dtype)):
                self.views[name] = [chunk.to_numpy(zero_copy_only=False) for chunk in column.chunks]

    def _groups(self, indices: np.ndarray) -> tuple[np.ndarray, list[tuple[int, np.ndarray, np.ndarray]]]:
        chunk_of = np.searchsorted(self.starts, indices, side="right") - 1
        order = np.argsort(chunk_of, kind="stable")
        ordered = chunk_of[order]
        cuts = np.r_[0, np.nonzero(np.diff(ordered))[0] + 1, len(order)]
        groups = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            if b > a:
                chunk = int(ordered[a])
                places = order[a:b]
                groups.append((chunk, places, indices[places] - self.starts[chunk]))
        return order, groups

    def _arrow_column(self, name: str, order: np.ndarray, groups: list[Any], n: int) -> pa.Array:
        chunks = self.table[name].chunks
        pieces = [chunks[chunk].take(pa.array(local)) for chunk, _, local in groups]
        joined = pa.concat_arrays(pieces) if pieces else pa.array([], self.table[name].type)
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.arange(n)
        return joined.take(pa.array(inverse))

    def arrays(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """``{column: NumPy array}`` of the rows at ``indices``, in that order."""
        n = len(indices)
        order, groups = self._groups(indices)
        result = {}
        for name in self.names:
            views = self.views.get(name)
            if views is not None:
                dtype = np.int64 if name in self._codes else (views[0].dtype if views else np.float64)
                out = np.empty(n, dtype=dtype)
                for chunk, places, local in groups:
                    out[places] = views[chunk][local]
                result[name] = out
            else:
                result[name] = self._arrow_column(name, order, groups, n).to_numpy(zero_copy_only=False)
        return result

    def rows(self, indices: np.ndarray) -> pa.Table:
        """The rows at ``indices`` as an Arrow table (types kept)."""
        n = len(indices)
        order, groups = self._groups(indices)
        return pa.Table.from_arrays([self._arrow_column(name, order, groups, n) for name in self.names],
                                    schema=self.table.schema)
