"""Shared pieces of the image models' training: device and threads, torch weights as named
arrays (for the ``.kiln`` container, never pickle), optimizer state the same way, and the
epoch record handed to progress callbacks.

The tabular models' loop (``synth/neural/_training.py``) works on encoded table rows; an
image GAN needs two optimizers, DiffAugment and a generator average, so the image models run
their own short loop and share only these pieces.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datakiln.errors import InvalidArgumentError

__all__ = [
    "EpochRecord",
    "arrays_to_module",
    "choose_device",
    "module_arrays",
    "optimizer_arrays",
    "optimizer_from_arrays",
    "seeded",
    "torch_threads",
]


@dataclass
class EpochRecord:
    """One finished epoch: ``epoch`` (1-based), mean ``losses`` by name, ``seconds``, the
    early-stopping ``score`` (lower is better; None when not measured) and ``images`` seen."""

    epoch: int
    losses: dict[str, float]
    seconds: float
    images: int
    score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "losses": self.losses,
            "seconds": round(self.seconds, 3),
            "images": self.images,
            "score": self.score,
        }


EpochCallback = Callable[[EpochRecord], None]


def choose_device(device: str) -> Any:
    """``"auto"`` → CUDA when present, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"`` as given."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as exc:
        raise InvalidArgumentError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from exc
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError("device='cuda' but no CUDA device is visible; use device='auto' or 'cpu'")
    return chosen


def default_threads() -> int:
    """The CPUs this process may use, less those the 1-minute load average says are busy
    (at least 1): torch's OpenMP threads spin, so on a shared machine 2 threads competing
    with other work run several times slower than 1."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = int(os.getloadavg()[0])
    except OSError:
        busy = 0
    return max(1, min(usable, usable - busy + 1))


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch threads (default :func:`default_threads`), restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads or default_threads())))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def seeded(seed: int) -> Iterator[Any]:
    """Seed torch's global generator for module initialisation without leaking the change
    (the caller's random state is restored); yields a CPU ``torch.Generator`` of the seed."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed + 1)


def module_arrays(module: Any, prefix: str) -> dict[str, np.ndarray]:
    """A module's parameters and buffers as CPU NumPy arrays named ``prefix.<name>``."""
    out = {}
    for name, tensor in module.state_dict().items():
        out[f"{prefix}.{name}"] = tensor.detach().cpu().numpy().copy()
    return out


def arrays_to_module(module: Any, arrays: dict[str, np.ndarray], prefix: str) -> None:
    """Load ``prefix.<name>`` arrays into ``module`` (shapes and names must match exactly)."""
    import torch

    start = prefix + "."
    state = {k[len(start) :]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(start)}
    for name, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(f"weights {prefix}.{name} hold NaN or infinite values")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # missing/unexpected keys or other shapes
        raise ValueError(f"the {prefix} weights do not fit the network: {str(exc)[:300]}") from exc


def optimizer_arrays(optimizer: Any, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """An optimizer's state as (JSON, arrays): per-parameter tensors become arrays."""
    state = optimizer.state_dict()
    arrays, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if hasattr(value, "detach"):
                arrays[f"{prefix}.{index}.{key}"] = value.detach().cpu().numpy().copy()
            else:
                scalars[f"{index}.{key}"] = value
    return {"param_groups": state["param_groups"], "scalars": scalars}, arrays


def optimizer_from_arrays(
    optimizer: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str
) -> None:
    """Restore what :func:`optimizer_arrays` saved into ``optimizer``."""
    import torch

    state: dict[int, dict[str, Any]] = {}
    start = prefix + "."
    for name, value in arrays.items():
        if name.startswith(start):
            index, key = name[len(start) :].split(".", 1)
            state.setdefault(int(index), {})[key] = torch.from_numpy(np.array(value))
    for name, value in meta.get("scalars", {}).items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
