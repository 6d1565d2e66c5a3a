"""What every geometric op shares: argument checks, the backend choice and the one ``apply``
(new images, then boxes, masks and keypoints moved by each sample's matrix)."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence

import numpy as np

from datakiln._optional import import_optional
from datakiln.augment._targets import move_targets
from datakiln.augment._warp import check_images
from datakiln.augment.base import Augmenter, ImageBatch, Params
from datakiln.errors import InvalidArgumentError

__all__ = ["GeometricOp", "Size", "identity", "probability", "resolve_backend", "size_pair",
           "value_range"]

Size = int | Sequence[int]
BACKENDS = ("auto", "numpy", "torch")


# -- argument checks ---------------------------------------------------------------------
def size_pair(size: Size, op: str) -> tuple[int, int]:
    """``size`` as ``(height, width)``: an int is a square."""
    pair = (size, size) if isinstance(size, int | np.integer) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) and v > 0 for v in pair):
        raise InvalidArgumentError(f"{op} needs size as a positive int or (height, width), "
                                   f"got {size!r}")
    return int(pair[0]), int(pair[1])


def probability(p: float, op: str) -> float:
    if not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise InvalidArgumentError(f"{op} needs 0 <= p <= 1, got p={p!r}")
    return float(p)


def value_range(value: float | Sequence[float], op: str, name: str, *,
                symmetric: bool = True, positive: bool = False) -> tuple[float, float]:
    """A number ``v`` as ``(-v, v)`` (or ``(v, v)``), or a ``(low, high)`` pair, checked."""
    try:
        if isinstance(value, int | float):
            low, high = (-abs(value), abs(value)) if symmetric else (value, value)
        else:
            low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{op} needs {name} as a number or a (low, high) pair, "
                                   f"got {value!r}") from None
    if not low <= high or (positive and low <= 0) or not math.isfinite(low + high):
        need = "0 < low <= high" if positive else "low <= high"
        raise InvalidArgumentError(f"{op} needs {name} with {need}, got {value!r}")
    return float(low), float(high)


def resolve_backend(backend: str, op: str, *, torch_faster: bool) -> str:
    """``"numpy"`` or ``"torch"``: ``"auto"`` takes torch where it was measured faster."""
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"{op} needs backend in {BACKENDS}, got {backend!r}")
    if backend == "torch":
        import_optional("torch", extra="torch", purpose=f"{op}(backend='torch')")
        return "torch"
    if backend == "auto" and torch_faster and _torch_installed():
        return "torch"
    return "numpy"


def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def identity(n: int) -> np.ndarray:
    matrix = np.zeros((n, 2, 3))
    matrix[:, 0, 0] = matrix[:, 1, 1] = 1.0
    return matrix


# -- the shared apply --------------------------------------------------------------------
class GeometricOp(Augmenter):
    """An op that moves pixels: subclasses give the new images and, for the boxes, masks
    and keypoints, each sample's input-to-output matrix and output size."""

    mask_fill: int = 0

    def _images(self, batch: ImageBatch, params: Params) -> np.ndarray | list[np.ndarray]:
        raise NotImplementedError

    def _forward(self, batch: ImageBatch, params: Params) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def apply(self, batch: ImageBatch, params: Params) -> ImageBatch:
        check_images(batch.images)
        if len(batch) == 0:  # nothing to move; a fixed output size still shapes the array
            size, empty = getattr(self, "size", None), batch.images
            if isinstance(empty, np.ndarray) and isinstance(size, tuple):
                empty = np.empty((0, *size, empty.shape[3]), dtype=empty.dtype)
            return batch.with_images(empty)
        images = self._images(batch, params)
        if batch.boxes is None and batch.masks is None and batch.keypoints is None:
            return batch.with_images(images)
        forward, sizes = self._forward(batch, params)
        return batch.with_images(images, **move_targets(batch, forward, sizes, self.mask_fill))
