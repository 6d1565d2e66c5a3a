"""PyTorch bridge: the only torch import outside synth/neural and synth/image.

- :func:`to_tensors`: NumPy columns to tensors without another copy (``torch.from_numpy``
  shares the batch's buffers), optionally pinned.
- :func:`map_dataset`: a map-style ``torch.utils.data.Dataset`` whose ``__getitems__``
  gathers a whole batch of rows at once (vectorised), for samplers of your own.
- :func:`iterable_dataset`: a ``torch.utils.data.IterableDataset`` over a datakiln
  :class:`~datakiln.dataset.loader.Loader`, for ``DataLoader(ds, batch_size=None,
  num_workers=k)``. Worker ``w`` of ``k`` assembles batches ``w, w + k, ...`` and the
  DataLoader takes them round-robin, so the batch sequence is the loader's own whatever
  ``k`` is: no duplicates, nothing lost, and a resumed epoch continues exactly even after
  changing the number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from datakiln._optional import import_optional

if TYPE_CHECKING:
    from datakiln.dataset.loader import Loader

__all__ = ["check_pinning", "iterable_dataset", "map_dataset", "to_tensors"]


def _torch() -> Any:
    return import_optional("torch", extra="torch", purpose="PyTorch batches")


def check_pinning() -> None:
    """Raise a clear error when page-locked (pinned) memory cannot be used here."""
    torch = _torch()
    if not torch.cuda.is_available():
        from datakiln.errors import InvalidArgumentError

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

        def __len__(self) -> int:
            return len(self.loader) - self.loader._skip

        def __iter__(self) -> Iterator[Any]:
            info = torch.utils.data.get_worker_info()
            workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
            for batch in self.loader._iter_shard(worker, workers):
                yield to_tensors(batch) if self.loader.format == "numpy" else batch

    return _Batches()


def map_dataset(loader: Loader) -> Any:
    """A map-style torch ``Dataset`` over ``loader``'s rows: ``__getitems__(indices)``
    returns one batch (dict of tensors) gathered in one vectorised call; use it with
    ``DataLoader(ds, batch_size=B, sampler=..., collate_fn=lambda batch: batch)``."""
    torch = _torch()
    if loader.streaming:
        from datakiln.errors import InvalidArgumentError

        raise InvalidArgumentError("a map-style dataset needs random access: load from "
                                   "ds.cache(...) (this source is streamed)")

    class _Rows(torch.utils.data.Dataset):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.loader = loader

        def __len__(self) -> int:
            return self.loader.rows

        def __getitems__(self, indices: list[int]) -> dict[str, Any]:
            return to_tensors(self.loader._gather.arrays(np.asarray(indices, dtype=np.int64)))

        def __getitem__(self, index: int) -> dict[str, Any]:
            batch = self.__getitems__([index])
            return {name: values[0] for name, values in batch.items()}

    return _Rows()
