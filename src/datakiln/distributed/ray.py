"""Ray Data execution: the same lazy plans lowered to Ray tasks (the only module importing ray).

A :class:`~datakiln.Dataset` plan is its source's read tasks, the operations after the
pushed-down select/filter, and (for a streaming statistic) a per-table function. Locally a
thread pool runs them; here each read task becomes one Ray task that reads its piece, runs
the operations and the function on a worker of any node, and returns only the result (a
summary, a count, a table). Results are taken back **in task order**, so everything built
on ``Dataset._tables`` -- ``profile``, ``Cleaner.fit`` / ``transform``, ``split``,
``GaussianCopula.fit``, ``evaluate``, the samplers, ``write`` -- merges the same pieces in the
same order as the local run and gives the same result, however Ray places the tasks.

Where the pieces are read:

* files with independent read tasks (Parquet row groups, CSV byte ranges, Arrow batches) are
  read by the Ray workers themselves (every node must see the path: a shared file system or
  an object store URL);
* a table in memory, a database cursor or a source whose tasks depend on each other is read
  on the driver, and each table is put into Ray's object store once;
* a ``ray.data.Dataset`` (:func:`from_ray`) is read block by block where its blocks live.

At most ``in_flight`` tasks are submitted ahead of the consumer (default: two per CPU of
the cluster, capped by the dataset's memory budget), so the object store holds a bounded
number of results and never spills more than that window.

Why not ``ray.data`` ``map_batches`` for everything: Ray Data re-orders blocks unless told
to preserve order, and gives no place to merge per-block statistics on the driver; plain
tasks with an ordered window are the smallest lowering that keeps datakiln's results exact.
:func:`to_ray` still hands over a ``ray.data.Dataset`` of Arrow blocks for Ray Train / Ray
Data users, and :func:`from_ray` takes one back without a pandas round trip.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln._optional import import_optional
from datakiln.errors import DatakilnError, InvalidArgumentError
from datakiln.io.arrow import TableSource
from datakiln.io.base import Source, apply_pushdown

__all__ = ["RayBlockSource", "RayEngine", "from_ray", "make_engine", "sample", "to_ray", "train_loader",
           "write"]

_ENGINES: dict[tuple[Any, ...], RayEngine] = {}


def _ray() -> Any:
    return import_optional("ray", extra="ray", purpose="the Ray engine")


def _node() -> str:
    return _ray().get_runtime_context().get_node_id()


def _run_task(task: Callable[[], pa.Table], work: Callable[[pa.Table], Any]) -> tuple[str, Any]:
    """On a worker: read one piece and run the plan's operations on it."""
    return _node(), work(task())


def _run_table(table: pa.Table, work: Callable[[pa.Table], Any]) -> tuple[str, Any]:
    """On a worker: run the plan's operations on a table already in the object store."""
    return _node(), work(table)


def _run_block(block: pa.Table, columns: Sequence[str] | None, condition: pc.Expression | None,
               work: Callable[[pa.Table], Any]) -> tuple[str, Any]:
    """On a worker: one Ray Data block, projected and filtered, through the plan."""
    return _node(), work(apply_pushdown(_as_arrow(block), columns, condition))


def _as_arrow(block: Any) -> pa.Table:
    if isinstance(block, pa.Table):
        return block
    if isinstance(block, pa.RecordBatch):
        return pa.Table.from_batches([block])
    return pa.Table.from_pandas(block, preserve_index=False)  # a pandas block made by Ray itself


class RayEngine:
    """Runs dataset plans as Ray tasks (see the module docstring).

    Parameters
    ----------
    address : str, optional
        A running cluster to join (``"auto"``, ``"ray://head:10001"``); None starts or reuses
        a local Ray (``num_cpus`` CPUs).
    num_cpus : int, optional
        CPUs of a Ray started here (default: all of this machine's).
    spread : bool
        Spread tasks over the nodes (Ray's ``SPREAD`` strategy, default True) rather than
        filling one node first.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 spread: bool = True) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.spread = spread
        #: tasks run per node id (hex) since the engine was made; ``clear()`` it to count anew
        self.nodes_used: dict[str, int] = {}
        self._remote: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"RayEngine(address={self.address!r})"

    def __getstate__(self) -> dict[str, Any]:  # a dataset sent to a Ray worker carries its engine
        return {**self.__dict__, "_remote": {}, "nodes_used": {}}

    def connect(self) -> Any:
        """Start or join Ray once (already running: reused as it is); returns the ray module."""
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=self.address, num_cpus=self.num_cpus, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        return ray

    def _function(self, fn: Callable[..., Any]) -> Any:
        ray = self.connect()
        if fn.__name__ not in self._remote:
            options: dict[str, Any] = {"num_cpus": 1, "max_retries": 2}
            if self.spread:
                options["scheduling_strategy"] = "SPREAD"
            self._remote[fn.__name__] = ray.remote(fn).options(**options)
        return self._remote[fn.__name__]

    def window(self, in_flight: int, budgeted: bool) -> int:
        """Tasks in flight: two per cluster CPU, or the local budget's cap when one is set."""
        cpus = int(self.connect().cluster_resources().get("CPU", 1))
        return max(1, min(in_flight, 2 * cpus) if budgeted else max(in_flight, 2 * cpus))

    def submit(self, source: Source, tasks: Iterator[Any],
               work: Callable[[pa.Table], Any]) -> Iterator[Any]:
        """One Ray object reference per read task, in order (lazily, as ``tasks`` is consumed)."""
        ray = self.connect()
        work_ref = ray.put(work)
        remote_read = source.tasks_are_independent and not isinstance(source, TableSource)
        for task in tasks:
            if isinstance(task, _BlockTask):
                yield self._function(_run_block).remote(task.ref, task.columns, task.condition, work_ref)
            elif remote_read:
                yield self._function(_run_task).remote(task, work_ref)
            else:  # in memory, a cursor, or tasks that depend on each other: read here
                yield self._function(_run_table).remote(ray.put(task()), work_ref)

    def map_tables(self, source: Source, tasks: Iterator[Any], work: Callable[[pa.Table], Any], *,
                   in_flight: int, budgeted: bool = False) -> Iterator[Any]:
        """Yield ``work(task())`` for each read task, in task order, computed as Ray tasks."""
        ray = self.connect()
        window = self.window(in_flight, budgeted)
        pending: deque[Any] = deque()

        def take() -> Any:
            try:
                node, result = ray.get(pending.popleft())
            except ray.exceptions.RayTaskError as exc:  # the datakiln error, not Ray's wrapper
                cause = getattr(exc, "cause", None)
                if isinstance(cause, DatakilnError):
                    raise cause from None
                raise
            self.nodes_used[node] = self.nodes_used.get(node, 0) + 1
            return result

        refs = self.submit(source, tasks, work)
        try:
            for ref in refs:
                pending.append(ref)
                while len(pending) >= window:
                    yield take()
            while pending:
                yield take()
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            refs.close()
            close = getattr(tasks, "close", None)
            if close is not None:
                close()


def make_engine(address: str | None = None, **options: Any) -> RayEngine:
    """The engine for ``address`` (one per address and options in this process)."""
    key = (address, tuple(sorted(options.items())))
    if key not in _ENGINES:
        _ENGINES[key] = RayEngine(address, **options)
    engine = _ENGINES[key]
    engine.connect()
    return engine


# -- ray.data interchange -----------------------------------------------------------------------
class _BlockTask:
    """A read task over one Ray Data block (``ray.get`` here, or passed to a Ray task by reference)."""

    def __init__(self, ref: Any, columns: Sequence[str] | None, condition: pc.Expression | None,
                 schema: pa.Schema) -> None:
        self.ref, self.columns, self.condition, self.schema = ref, columns, condition, schema

    def __call__(self) -> pa.Table:
        table = _as_arrow(_ray().get(self.ref))
        return apply_pushdown(table, self.columns, self.condition)


def _digest(block: Any) -> tuple[int, str]:
    """On a worker: a block's row count and the SHA-256 of its Arrow IPC stream."""
    table = _as_arrow(block).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return table.num_rows, hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


class RayBlockSource(Source):
    """The blocks of a materialised ``ray.data.Dataset`` as a datakiln source (Arrow, in order).

    Its fingerprint hashes the blocks' content (on the workers), so the loader's order is the
    same in every process that sees the same data.
    """

    tasks_are_independent = True

    def __init__(self, ray_dataset: Any) -> None:
        super().__init__()
        ray = _ray()
        materialized = ray_dataset.materialize()
        self.refs = list(materialized.to_arrow_refs())
        self.name = f"ray dataset ({len(self.refs)} blocks)"
        schema = materialized.schema()
        base = getattr(schema, "base_schema", None)
        self._schema = base if isinstance(base, pa.Schema) else _as_arrow(ray.get(self.refs[0])).schema
        digests = ray.get([ray.remote(_digest).remote(ref) for ref in self.refs]) if self.refs else []
        self.rows = [rows for rows, _ in digests]
        self._fingerprint = hashlib.sha256(
            ("ray:" + "|".join(digest for _, digest in digests)).encode()).hexdigest()

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def fingerprint(self) -> str:
        return self._fingerprint

    def count_rows(self) -> int:
        return int(sum(self.rows))

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[Any]:
        for ref in self.refs:
            yield _BlockTask(ref, columns, filter, self._schema)


def from_ray(ray_dataset: Any, **kwargs: Any) -> Any:
    """A :class:`~datakiln.Dataset` over a ``ray.data.Dataset`` (its Arrow blocks, in order).

    The Ray dataset is materialised (its blocks stay in Ray's object store); plans over it
    run where the blocks are when an engine is active, else on this process.

    >>> ds = datakiln.from_ray(ray.data.read_parquet("s3://bucket/events/"))  # doctest: +SKIP
    """
    from datakiln.dataset.dataset import Dataset

    if not hasattr(ray_dataset, "to_arrow_refs"):
        raise InvalidArgumentError(f"from_ray takes a ray.data.Dataset, got {type(ray_dataset).__name__}")
    kwargs.setdefault("engine", make_engine())
    return Dataset(RayBlockSource(ray_dataset), **kwargs)


def to_ray(dataset: Any) -> Any:
    """``dataset`` as a ``ray.data.Dataset`` of Arrow blocks, one per read task, in order.

    The plan (reads, select/filter, ``map_batches``) runs as Ray tasks; no pandas round trip.
    """
    engine = dataset._current_engine() or make_engine()
    ray = engine.connect()
    columns, condition, rest = dataset._pushdown()
    if any(op.kind == "limit" for op in rest):  # a limit needs the order: cut here, then hand over
        refs = [ray.put(table) for table in dataset._tables()]
    else:
        from datakiln.dataset.dataset import _apply

        def work(table: pa.Table, ops: Any = tuple(rest)) -> pa.Table:
            return _apply(table, ops)

        tasks = dataset.source.read_tasks(columns, condition)
        refs = [engine._function(_table_only).remote(ref)
                for ref in engine.submit(dataset.source, tasks, work)]
    if not refs:
        refs = [ray.put(dataset.arrow_schema.empty_table())]
    return ray.data.from_arrow_refs(refs)


def _table_only(result: tuple[str, pa.Table]) -> pa.Table:
    return result[1]


# -- writes from the workers -------------------------------------------------------------------
def _write_part(result: tuple[str, pa.Table], url: str, compression: str) -> tuple[str, int, int]:
    """On a worker: one table as one Parquet object at ``url``; (node, rows, bytes)."""
    import fsspec

    node, table = result
    if not table.num_rows:
        return node, 0, 0
    sink = pa.BufferOutputStream()
    import pyarrow.parquet as pq

    pq.write_table(table, sink, compression=compression)
    data = sink.getvalue().to_pybytes()
    fs, path = fsspec.core.url_to_fs(url)
    fs.pipe_file(path, data)
    return node, table.num_rows, len(data)


def write(dataset: Any, url: str, *, overwrite: bool = False, compression: str = "zstd",
          engine: RayEngine | None = None) -> list[str]:
    """Write ``dataset`` to an object store as Parquet parts written by the Ray tasks themselves.

    Each read task's rows go through the plan on a worker, which uploads them as one part
    (``part-NNNNN-<run>.parquet`` under ``url``); the driver then writes the manifest
    ``_datakiln.json`` listing them, last: readers read only what a manifest lists, so a write
    that fails or is killed leaves nothing visible (its objects are deleted now or by the next
    write to ``url``). Workers reach the store with their own credentials (environment or
    profile on each node; datakiln never ships them). A local path goes to
    :meth:`Dataset.write` (one writer, the same commit rule). Returns the URLs written.
    """
    from datakiln.io.objectstore import RemoteOutput, is_remote

    if not is_remote(url):
        result = dataset.write(url, format="parquet", overwrite=overwrite, compression=compression)
        return [str(p) for p in result.files] or [str(result.path)]
    engine = engine or dataset._current_engine() or make_engine()
    ray = engine.connect()
    output = RemoteOutput(url, directory=True, overwrite=overwrite)
    columns, condition, rest = dataset._pushdown()
    if any(op.kind == "limit" for op in rest):
        raise InvalidArgumentError("write on Ray takes a plan without limit(); write ds.limit(n) locally")
    from datakiln.dataset.dataset import _apply

    def work(table: pa.Table, ops: Any = tuple(rest)) -> pa.Table:
        return _apply(table, ops)

    names: list[str] = []
    refs: list[Any] = []
    try:
        tasks = dataset.source.read_tasks(columns, condition)
        for index, ref in enumerate(engine.submit(dataset.source, tasks, work)):
            names.append(f"part-{index:05d}.parquet")
            refs.append(engine._function(_write_part).remote(ref, output.object_url(names[-1]), compression))
        rows = 0
        while refs:
            try:
                node, count, size = ray.get(refs[0])
            except ray.exceptions.RayTaskError as exc:
                names.pop(0), refs.pop(0)
                cause = getattr(exc, "cause", None)
                raise cause if isinstance(cause, DatakilnError) else exc from None
            name, _ = names.pop(0), refs.pop(0)
            engine.nodes_used[node] = engine.nodes_used.get(node, 0) + 1
            if count:
                output.adopt(name, size)
                rows += count
        return output.commit(format="parquet", rows=rows)
    except BaseException:
        _adopt_landed(ray, output, names, refs)
        output.discard()  # every uploaded part is adopted by now, so the discard deletes it
        raise


def _adopt_landed(ray: Any, output: Any, names: list[str], refs: list[Any]) -> None:
    """After a failure: cancel the part tasks not started, wait for the others, and adopt
    every object of this run found under the output (so the discard deletes it; no upload
    may land after the discard)."""
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    with contextlib.suppress(Exception):
        ray.wait(refs, num_returns=len(refs), timeout=600)
    with contextlib.suppress(Exception):
        output.fs.invalidate_cache()
        for path, info in output.fs.find(output.root, detail=True).items():
            name = path.rsplit("/", 1)[-1]
            if f"-{output.token}." in name:
                output.adopt(name.replace(f"-{output.token}", ""), int(info.get("size") or 0))


# -- copula sampling partitioned by seed ---------------------------------------------------------
def _chunk(model: Any, index: int, plan: Any, conditions: dict[str, Any], seed: int) -> pa.Table:
    return model._chunk(index, plan, conditions, np.random.default_rng([seed, index]))


def sample(model: Any, n: int, conditions: dict[str, Any] | None = None, seed: int | None = None,
           *, engine: RayEngine | None = None) -> pa.Table:
    """``model.sample(n, conditions, seed)`` with the chunks run as Ray tasks: the same rows.

    Chunk ``i`` of :data:`~datakiln.synth._sampling.CHUNK_ROWS` rows is drawn from the
    generator seeded by ``(seed', i)`` exactly as locally (``seed'`` derived from ``seed``),
    so where a chunk runs does not change a row.
    """
    from datakiln.synth._sampling import CHUNK_ROWS

    if not hasattr(model, "_chunk"):
        raise InvalidArgumentError(
            f"sampling on Ray needs a fitted GaussianCopula, got {type(model).__name__}")
    model._check_sample_args(n, conditions, seed)
    engine = engine or make_engine()
    ray = engine.connect()
    conditions = dict(conditions or {})
    rng = np.random.default_rng(seed)
    derived = int(rng.integers(0, 2**62))  # as CopulaSampling._batches derives it
    plan = model._plan(conditions, np.random.default_rng([derived, 2**32]))
    model_ref = ray.put(model)
    remote = engine._function(_chunk)
    chunks = range((n + CHUNK_ROWS - 1) // CHUNK_ROWS)
    refs = [remote.remote(model_ref, i, plan, conditions, derived) for i in chunks]
    pieces = list(model._gather(iter(ray.get(refs)), n, CHUNK_ROWS * 4)) if refs else []
    schema = model.output_schema()
    table = pa.concat_tables(pieces) if pieces else schema.empty_table()
    return table.select(schema.names).cast(schema)


# -- Ray Train ------------------------------------------------------------------------------------
def train_loader(dataset: Any, batch_size: int, **options: Any) -> Any:
    """The loader for this Ray Train worker: ``rank`` / ``world_size`` from ``ray.train``.

    Call it inside a ``train_loop_per_worker``; every worker gets its own disjoint shard of
    the same exactly shuffled, resumable order (``loader.state_dict()`` / ``load_state_dict``).
    Each worker reads the dataset's source itself on its own threads (a shared file, the
    cache or the Ray blocks, fetched from the object store), so the order does not depend on
    which node a worker runs on; every worker reads the whole source once per loader (the
    order is global), which is the limit of this design for data larger than one node's
    memory budget (then ``ds.cache(...)`` on each node, or the loader's streaming mode).
    """
    train = import_optional("ray.train", extra="ray", purpose="Ray Train workers")
    context = train.get_context()
    options.setdefault("rank", context.get_world_rank())
    options.setdefault("world_size", context.get_world_size())
    return dataset.with_engine("local").loader(batch_size, **options)
