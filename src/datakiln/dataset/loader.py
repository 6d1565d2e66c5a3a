"""The loader: shuffled, sharded, prefetched, exactly resumable batches.

Order is a pure function of ``(seed, epoch, dataset fingerprint)`` (or a ``key=`` of the
caller's instead of the fingerprint): position ``p`` of an epoch reads row
``permute(p, n, key)`` (a keyed bijection, no permutation array). The fingerprint comes
from content (:mod:`datakiln.dataset._identity`), so ranks in separate processes, on other
mount points or over a re-copied cache agree on it. Each step of the epoch takes
``world_size × batch_size`` positions and rank ``r`` gets the ``r``-th slice, so ranks
never overlap. The final, partial step (never a 0-row batch) is, with
``even_batches="pad"`` (the default when ``world_size > 1``, PyTorch
``DistributedSampler``'s way), filled up by repeating the epoch's first positions so every
rank gets the same number of full batches; with ``"spread"`` (the default for one rank)
dealt as evenly as possible, every row exactly once, ranks left without a row getting one
batch fewer; or dropped with ``drop_last``. The resume state is just ``(epoch, batches
consumed)``, counted where the batches are taken (``torch_loader`` counts in the process
that iterates its DataLoader, whatever its workers do).

Rows are gathered chunk by chunk with NumPy fancy indexing and Arrow ``take`` on
background threads (both release the GIL) from random-access storage: a memory-mapped
Arrow file (``Dataset.cache``) or a table in memory; batches prefetched ahead are capped
at a quarter of the memory budget in bytes. Nothing runs per sample in Python. Sources that
cannot be read at random and whose decoded size (:mod:`datakiln.dataset._size`) exceeds
the budget are streamed instead: shuffled block order plus a shuffle buffer
(:mod:`datakiln.dataset._stream`), dealt to ranks the same way.

A text column is tokenised and padded on the same threads (``input_ids``, ``attention_mask``),
optionally bucketed by length (:mod:`datakiln.dataset._text_batches`).

Output formats beyond NumPy, Arrow and pandas come from integrations that register a
converter (:func:`register_format`); this module names them but never imports them, so the
layers look down only (``format="torch"`` loads :mod:`datakiln.integrations.torch` on
first use, which registers itself).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
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

from datakiln.dataset._executor import default_threads, ordered_map
from datakiln.dataset._gather import Gather
from datakiln.dataset._image_batches import ImagePipeline, channels_first, find_image_columns, image_pipeline
from datakiln.dataset._permute import permute
from datakiln.dataset._size import decoded_bytes
from datakiln.dataset._text_batches import TextPipeline, text_pipeline
from datakiln.errors import InvalidArgumentError, MemoryBudgetError
from datakiln.io.arrow import ArrowFileSource, TableSource
from datakiln.units import format_bytes, parse_bytes

if TYPE_CHECKING:
    from datakiln.dataset.dataset import Dataset

INFER_ROWS = 10_000  # the dataset's inference sample (datakiln.dataset.dataset.INFER_ROWS)

__all__ = ["EVEN_BATCHES", "FORMATS", "Loader", "register_format"]

FORMATS = ("numpy", "arrow", "pandas", "torch")
EVEN_BATCHES = ("pad", "spread")
#: batches whose row numbers are computed in one vectorised call
BLOCK_BATCHES = 64
#: integrations that provide a format, by module name (imported on first use only)
_PROVIDERS = {"torch": "datakiln.integrations.torch"}
_CONVERTERS: dict[str, tuple[Callable[..., Any], Callable[[], None] | None]] = {}


def register_format(name: str, convert: Callable[..., Any],
                    check_pinning: Callable[[], None] | None = None) -> None:
    """Let an integration deliver batches as ``convert(arrays, pin_memory=...)`` for
    ``format=name``; ``check_pinning()`` raises when ``pin_memory=True`` cannot work."""
    _CONVERTERS[name] = (convert, check_pinning)


def _provider(name: str) -> Any:
    """The integration module that provides ``name`` (it registers its format on import)."""
    return importlib.import_module(_PROVIDERS[name])


def _converter(name: str) -> tuple[Callable[..., Any], Callable[[], None] | None]:
    if name not in _CONVERTERS:
        _provider(name)
    return _CONVERTERS[name]


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
    """The dataset's rows as a table that supports cheap random ``take``, or None when
    their decoded size exceeds ``budget`` and they must be streamed."""
    source = dataset.source
    plain = not dataset._ops
    if plain and isinstance(source, ArrowFileSource):
        if isinstance(source.files.filesystem, LocalFileSystem):
            populate = budget is None or source.files.total_bytes <= budget
            return pa.concat_tables([_mapped(path, populate) for path in source.files.paths])
        return pa.concat_tables([reader.read_all() for reader in source._readers])
    if plain and isinstance(source, TableSource):
        return source.table
    if budget is not None and decoded_bytes(dataset, INFER_ROWS) > budget:
        return None  # too big to hold and not random-access: stream it instead
    table = dataset.to_arrow()
    if dataset._head is None:  # its first rows are the kind-inference sample: not read twice
        dataset._head = table.slice(0, INFER_ROWS)
    return table


@dataclass
class _Recorded:
    """A batch with its augmentation record, until the consumer takes it."""

    batch: Any
    record: dict[str, Any] | None


class Loader:
    """Iterable of batches; see :meth:`datakiln.Dataset.loader` for the parameters."""

    def __init__(self, dataset: Dataset, batch_size: int, *, columns: list[str] | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 format: str = "numpy", prefetch: int = 2, num_threads: int | None = None,
                 rank: int = 0, world_size: int = 1, memory_budget: int | str | None = None,
                 pin_memory: bool = False, on_progress: Callable[[int], None] | None = None,
                 even_batches: str | None = None, key: str | None = None, transform: Any = None,
                 image_size: int | tuple[int, int] | None = None, image_mode: str = "RGB",
                 on_params: Callable[[dict[str, Any]], None] | None = None,
                 text_column: str | None = None, tokenizer: Any = None, pad_to: str | int = "longest",
                 bucket_by_length: bool | str = False) -> None:
        if batch_size <= 0:
            raise InvalidArgumentError(f"batch_size must be positive, got {batch_size}")
        if world_size <= 0 or not 0 <= rank < world_size:
            raise InvalidArgumentError(f"need 0 <= rank < world_size, got rank={rank}, "
                                       f"world_size={world_size}")
        if format not in FORMATS:
            raise InvalidArgumentError(f"format must be one of {FORMATS}, got {format!r}")
        if even_batches is None:
            even_batches = "pad" if world_size > 1 else "spread"
        if even_batches not in EVEN_BATCHES:
            raise InvalidArgumentError(f"even_batches must be one of {EVEN_BATCHES} or None, got "
                                       f"{even_batches!r}")
        if key is not None and (not isinstance(key, str) or not key):
            raise InvalidArgumentError(f"key must be a non-empty string, got {key!r}")
        self.even_batches, self.key = even_batches, key
        whole = dataset  # the order ignores the column choice (its fingerprint: below)
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
            check = _converter(format)[1]
            if check is not None:
                check()
        self.epoch = 0
        self._skip = 0
        self._resume = 0  # counts load_state_dict calls: worker copies tell resume points apart
        self._stats = LoaderStats()
        table = _random_access_table(dataset, self.memory_budget)
        # after the read: an image folder identifies its files from the bytes just read;
        # a caller's key stands for the content
        self._order_fingerprint = f"key:{key}" if key is not None else whole.fingerprint
        self.streaming = table is None
        self._images: ImagePipeline | None = None
        self._text: TextPipeline | None = text_pipeline(
            table, text_column, tokenizer=tokenizer, pad_to=pad_to, transform=transform,
            bucket=bucket_by_length, format=format)
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
            if self._text is not None:  # see datakiln.dataset._text_batches
                table, transform = table.drop_columns([text_column]), None
            self._images = image_pipeline(table, self.dataset.schema.kinds, self.categories,
                                          batch_size=batch_size, budget=self.memory_budget,
                                          format=format, transform=transform, size=image_size,
                                          mode=image_mode)
            if self._images is not None:
                table = table.drop_columns([self._images.column])
                if num_threads is None:  # decoding waits on no I/O: one thread per core
                    self.num_threads = max(1, default_threads() - 1)
            self._gather = Gather(table, self.categories, contiguous=contiguous)
        if self.streaming and (transform is not None or find_image_columns(
                self.dataset._inference_sample(), self.dataset.schema.kinds)):
            raise InvalidArgumentError(
                "images are loaded from random-access rows, and this source would be streamed (its "
                "size exceeds the memory budget): write it once with ds.cache('images.arrow') and "
                "load from that")
        self.on_params = on_params
        #: the last delivered batch's augmentation record: {"epoch", "row_ids", "params"}
        self.last_params: dict[str, Any] | None = None
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

    def _spread_share(self) -> tuple[int, int]:
        """(first epoch position, rows) of this rank's part of the final step, spread evenly."""
        full, rest = self._steps()
        share, extra = divmod(rest, self.world_size)
        start = full * self.batch_size * self.world_size + self.rank * share + min(self.rank, extra)
        return start, share + (1 if self.rank < extra else 0)

    def __len__(self) -> int:
        """Batches this rank gets in one epoch (never a 0-row batch)."""
        full, rest = self._steps()
        if not rest or self.drop_last:
            return full
        if self.even_batches == "pad":
            return full + 1
        return full + (1 if self._spread_share()[1] else 0)

    def _positions(self, batch: int) -> np.ndarray:
        """Epoch positions of this rank's ``batch``-th batch, in ``[0, rows)``."""
        full, rest = self._steps()
        step = self.batch_size * self.world_size
        if batch < full or self.even_batches == "pad":  # padding repeats the first positions
            start = batch * step + self.rank * self.batch_size
            return np.arange(start, start + self.batch_size, dtype=np.int64) % max(self.rows, 1)
        start, size = self._spread_share()
        return np.arange(start, start + size, dtype=np.int64)

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
        self._resume += 1

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
        if self._images is not None:
            batch_bytes += self._images.batch_bytes(self.batch_size)
        return max(1, min(wanted, self.memory_budget // 4 // batch_bytes))

    def _stream_batches(self, wanted: set[int]) -> Iterator[Any]:
        """This rank's batches from the shuffled stream: step ``b`` of the epoch is batch ``b``."""
        from datakiln.dataset._stream import shuffled_stream

        step_rows = self.batch_size * self.world_size
        stream = shuffled_stream(self.dataset, self._key(), self._buffer_rows,
                                 shuffle=self.shuffle, threads=self.num_threads)
        full, rest = self._steps()
        pending: list[pa.Table] = []
        held, batch = 0, 0
        first_step: pa.Table | None = None  # kept to pad the final step ("pad" only)

        def emit(rows: pa.Table, number: int) -> Any:
            if number < full or self.even_batches == "pad":
                local = np.arange(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
            else:
                local = self._positions(number) - number * step_rows
            return self._convert(rows.take(pa.array(local)))

        for table in stream:
            pending.append(table)
            held += table.num_rows
            while held >= step_rows and batch < full:
                joined = pa.concat_tables(pending)
                step = joined.slice(0, step_rows)
                if batch == 0 and rest and self.even_batches == "pad" and not self.drop_last:
                    first_step = step
                if batch in wanted:
                    yield emit(step, batch)
                pending, held, batch = [joined.slice(step_rows)], held - step_rows, batch + 1
        if held and batch < len(self) and batch in wanted:
            last = pa.concat_tables(pending)
            if self.even_batches == "pad":  # epoch positions rows.. wrap round to 0..
                source = first_step if first_step is not None else last
                padding = np.arange(self.rows, (full + 1) * step_rows) % self.rows
                last = pa.concat_tables([last, source.take(pa.array(padding))])
            yield emit(last, batch)

    def _convert(self, rows: pa.Table) -> Any:
        """A gathered table in the loader's format."""
        if self.format in ("arrow", "pandas"):
            rows = rows.combine_chunks()
            return rows.to_pandas() if self.format == "pandas" else (
                rows.to_batches()[0] if rows.num_rows else pa.RecordBatch.from_pylist([], schema=rows.schema))
        arrays = Gather(rows, self.categories, contiguous=True).arrays(np.arange(rows.num_rows))
        return self._finish(arrays)

    def _finish(self, arrays: dict[str, np.ndarray]) -> Any:
        """NumPy columns in the loader's format (an integration's converter for torch)."""
        if self.format == "numpy":
            return arrays
        arrays = self.channels_first(arrays)
        return _converter(self.format)[0](arrays, pin_memory=self.pin_memory)

    def _assemble(self, batch: int) -> Any:
        text = self._text
        indices = text.bucketed(self.indices, batch, len(self), key=self._key(), epoch=self.epoch) if (
            text is not None and text.bucket) else self.indices(batch)
        if text is not None:
            arrays, record = text.assemble(indices, self._columns(indices), seed=self.seed, epoch=self.epoch)
            return _Recorded(self._finish(arrays), None if record is None else {"batch": batch, **record})
        if self._images is not None:
            arrays, record = self._images.assemble(indices, self._columns(indices),
                                                   seed=self.seed, epoch=self.epoch)
            return _Recorded(self._finish(arrays), None if record is None else {"batch": batch, **record})
        if self.format in ("arrow", "pandas"):
            rows = self._gather.rows(indices)
            return rows.to_pandas() if self.format == "pandas" else (
                rows.to_batches()[0] if rows.num_rows else pa.RecordBatch.from_pylist([], schema=rows.schema))
        return self._finish(self._gather.arrays(indices))

    def _record(self, recorded: _Recorded) -> Any:
        """Hand out a batch's augmentation record (``last_params``, ``on_params``)."""
        if recorded.record is not None:
            self.last_params = recorded.record
            if self.on_params is not None:
                self.on_params(recorded.record)
        return recorded.batch

    # -- images ----------------------------------------------------------------------------
    def images(self, row_ids: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """The rows' images decoded (``N×H×W×C`` uint8, resized to ``image_size``), before the
        transform: with ``last_params`` they replay a batch, ``transform.apply(ImageBatch(
        loader.images(rec["row_ids"]), rec["row_ids"]), rec["params"])``."""
        if self._images is None:
            raise InvalidArgumentError("this loader's rows hold no image column")
        return self._images.decode(np.asarray(row_ids, dtype=np.int64))

    def rows_arrays(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """NumPy columns of the rows at ``indices`` (images decoded and augmented, keyed by
        the rows' ids and the current epoch), for map-style access."""
        indices = np.asarray(indices, dtype=np.int64)
        arrays = self._columns(indices)
        if self._images is not None:
            arrays = self._images.assemble(indices, arrays, seed=self.seed, epoch=self.epoch)[0]
        if self._text is not None:
            arrays = self._text.assemble(indices, arrays, seed=self.seed, epoch=self.epoch)[0]
        return arrays

    def _columns(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The gathered columns (none when the image column is the only one)."""
        return self._gather.arrays(indices) if self._gather.names else {}

    def channels_first(self, arrays: dict[str, Any]) -> dict[str, Any]:
        """``arrays`` with the image column as contiguous ``N×C×H×W`` (torch's layout)."""
        return arrays if self._images is None else channels_first(arrays, [self._images.column])

    def __iter__(self) -> Iterator[Any]:
        return self._iter_shard(0, 1)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._async_batches()

    async def _async_batches(self) -> AsyncIterator[Any]:
        """``async for batch in loader``: each batch is awaited off the event loop."""
        batches, done = iter(self), object()
        while (batch := await asyncio.to_thread(next, batches, done)) is not done:
            yield batch

    def torch_loader(self, **dataloader_options: Any) -> Any:
        """This loader as a ``torch.utils.data.DataLoader`` (``num_workers=k`` and other
        options passed on) whose iteration updates :meth:`state_dict` in this process:
        use it to resume runs that load with worker processes (see
        :func:`datakiln.integrations.torch.data_loader`)."""
        return _provider("torch").data_loader(self, **dataloader_options)

    def torch_dataset(self) -> Any:
        """This loader as a torch ``IterableDataset`` for ``DataLoader(batch_size=None,
        num_workers=k)`` (see :mod:`datakiln.integrations.torch`). Worker processes work
        on copies of the loader: for :meth:`state_dict` to follow, iterate
        :meth:`torch_loader` instead."""
        return _provider("torch").iterable_dataset(self)

    def torch_map_dataset(self) -> Any:
        """The loader's rows as a map-style torch ``Dataset`` with a vectorised
        ``__getitems__`` (see :mod:`datakiln.integrations.torch`)."""
        return _provider("torch").map_dataset(self)

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
            if isinstance(batch, _Recorded):
                batch = self._record(batch)
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
