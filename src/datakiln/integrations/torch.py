"""PyTorch bridge: the only module of the package that imports torch.

It wraps the loader (the loader never imports it): importing this module registers the
``"torch"`` batch format with :func:`datakiln.dataset.loader.register_format`, and
``Loader.torch_loader`` / ``torch_dataset`` / ``torch_map_dataset`` call the functions
below. torch itself is imported on first use, never by ``import datakiln``.

- :func:`to_tensors`: NumPy columns to tensors without another copy (``torch.from_numpy``
  shares the batch's buffers), optionally pinned.
- :func:`data_loader`: a ``torch.utils.data.DataLoader`` over the loader whose iteration,
  in the process that iterates it, keeps ``loader.state_dict()`` current (worker processes
  only hold copies of the loader) and consumes a resume point once.
- :func:`map_dataset`: a map-style ``torch.utils.data.Dataset`` whose ``__getitems__``
  gathers a whole batch of rows at once (vectorised), for samplers of your own.
- :func:`iterable_dataset`: a ``torch.utils.data.IterableDataset`` over a datakiln
  :class:`~datakiln.dataset.loader.Loader`, for ``DataLoader(ds, batch_size=None,
  num_workers=k)``. Worker ``w`` of ``k`` assembles batches ``w, w + k, ...`` and the
  DataLoader takes them round-robin, so the batch sequence is the loader's own whatever
  ``k`` is: no duplicates, nothing lost, and a resumed epoch continues exactly even after
  changing the number of workers. Iterated through a DataLoader of your own with workers,
  the loader in this process does not see the progress (use :func:`data_loader` for
  ``state_dict``); a resume point still serves one pass only (the workers mark it used in
  shared memory).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from datakiln._optional import import_optional
from datakiln.dataset.loader import register_format
from datakiln.errors import InvalidArgumentError

if TYPE_CHECKING:
    from datakiln.dataset.loader import Loader

__all__ = ["check_pinning", "data_loader", "iterable_dataset", "map_dataset", "to_tensors"]


def _torch() -> Any:
    return import_optional("torch", extra="torch", purpose="PyTorch batches")


def check_pinning() -> None:
    """Raise a clear error when page-locked (pinned) memory cannot be used here."""
    torch = _torch()
    if not torch.cuda.is_available():
        raise InvalidArgumentError("pin_memory=True needs a CUDA device, and torch sees none "
                                   "here; leave pin_memory off on a CPU-only machine")


def to_tensors(arrays: dict[str, np.ndarray], *, pin_memory: bool = False) -> dict[str, Any]:
    """NumPy columns as torch tensors (zero-copy); datetimes become int64 ticks of their
    unit, text columns stay NumPy object arrays."""
    torch = _torch()
    result: dict[str, Any] = {}
    for name, values in arrays.items():
        if values.dtype == object:
            result[name] = values
            continue
        values = np.ascontiguousarray(values)
        if values.dtype.kind in "mM":  # datetimes and durations: their int64 ticks
            values = values.view(np.int64)
        if not values.flags.writeable:  # Arrow-owned buffer: torch needs a writable one
            values = values.copy()
        tensor = torch.from_numpy(values)
        result[name] = tensor.pin_memory() if pin_memory else tensor
    return result


def iterable_dataset(loader: Loader) -> Any:
    """Wrap ``loader`` as a torch ``IterableDataset`` (use ``DataLoader(..., batch_size=None)``)."""
    torch = _torch()

    class _Batches(torch.utils.data.IterableDataset):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.loader = loader
            # shared with the worker processes: (resume number, pass) that used the resume point
            self.used = torch.full((2,), -1, dtype=torch.int64).share_memory_()

        def __len__(self) -> int:
            return len(self.loader) - self.loader._skip

        def __iter__(self) -> Iterator[Any]:
            info = torch.utils.data.get_worker_info()
            if info is None:  # in this process: the loader consumes its resume point itself
                workers, worker = 1, 0
            else:
                workers, worker = info.num_workers, info.id
                self._skip_once((info.seed - info.id) % 2**62)  # the same for the pass's workers
            for batch in self.loader._iter_shard(worker, workers):
                numpy = self.loader.format == "numpy"
                yield to_tensors(self.loader.channels_first(batch)) if numpy else batch

        def _skip_once(self, run: int) -> None:
            """A worker's loader is a copy taken as the pass starts, so the parent's resume
            point stays set: it counts for the first pass that starts from it only."""
            if not self.loader._skip:
                return
            if int(self.used[0]) == self.loader._resume and int(self.used[1]) != run:
                self.loader._skip = 0  # an earlier pass resumed from it already
            else:
                self.used[0], self.used[1] = self.loader._resume, run

    return _Batches()


def map_dataset(loader: Loader) -> Any:
    """A map-style torch ``Dataset`` over ``loader``'s rows: ``__getitems__(indices)``
    returns one batch (dict of tensors) gathered in one vectorised call; use it with
    ``DataLoader(ds, batch_size=B, sampler=..., collate_fn=lambda batch: batch)``."""
    torch = _torch()
    if loader.streaming:
        raise InvalidArgumentError("a map-style dataset needs random access: load from "
                                   "ds.cache(...) (this source is streamed)")

    class _Rows(torch.utils.data.Dataset):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.loader = loader

        def __len__(self) -> int:
            return self.loader.rows

        def __getitems__(self, indices: list[int]) -> dict[str, Any]:
            rows = self.loader.rows_arrays(np.asarray(indices, dtype=np.int64))
            return to_tensors(self.loader.channels_first(rows))

        def __getitem__(self, index: int) -> dict[str, Any]:
            batch = self.__getitems__([index])
            return {name: values[0] for name, values in batch.items()}

    return _Rows()


def data_loader(loader: Loader, **options: Any) -> Any:
    """A ``torch.utils.data.DataLoader`` over ``loader`` that keeps its resume state here.

    ``options`` go to the DataLoader (``num_workers``, ``pin_memory``, ``timeout`` ...);
    batches are the loader's own, so ``batch_size`` / ``sampler`` / ``shuffle`` are not
    taken. Each batch counts as consumed when it is handed out in this process, so
    ``loader.state_dict()`` is exact whatever the workers prefetch; a completed pass
    starts the next one from its beginning; a resume point is used once.

    >>> batches = loader.torch_loader(num_workers=2)     # doctest: +SKIP
    >>> for batch in batches: ...                        # doctest: +SKIP
    >>> loader.state_dict()                              # doctest: +SKIP
    """
    torch = _torch()
    taken = sorted({"batch_size", "sampler", "batch_sampler", "shuffle", "drop_last"} & set(options))
    if taken:
        raise InvalidArgumentError(
            f"data_loader takes its batches from the datakiln loader; drop {taken} (set batch "
            "size, shuffle and drop_last on Dataset.loader)")
    if options.get("persistent_workers"):
        raise InvalidArgumentError(
            "persistent_workers=True keeps each worker's copy of the loader from one pass to the "
            "next, so set_epoch and resume points would not reach them; leave it off")

    class _Tracked(torch.utils.data.DataLoader):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(iterable_dataset(loader), batch_size=None, **options)
            self.loader = loader

        def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
            first = self.loader._skip  # the workers start from here (copied as they start)
            return _tracked(self.loader, super().__iter__(), first)

        def state_dict(self) -> dict[str, Any]:
            return self.loader.state_dict()

        def load_state_dict(self, state: dict[str, Any]) -> None:
            self.loader.load_state_dict(state)

    return _Tracked()


def _tracked(loader: Loader, batches: Iterator[Any], first: int) -> Iterator[Any]:
    """``batches`` (started from the loader's resume point ``first``), counted into it."""
    for count, batch in enumerate(batches, start=1):
        loader._skip = first + count
        yield batch
    loader._skip = 0  # the pass is complete: the next one starts afresh


register_format("torch", to_tensors, check_pinning)
