"""Boxes, masks and keypoints moved with their image by the same affine map.

Every geometric op describes what it did to sample ``n`` as a ``2×3`` matrix ``forward[n]``
mapping input pixel coordinates to output ones (continuous coordinates: pixel ``(i, j)``
covers ``[j, j+1) × [i, i+1)``) and the output size; this module applies it:

- **boxes** ``(k, 4 + m)`` float32, ``x0, y0, x1, y1`` in pixels, then ``m`` extra columns
  (a class id, a score) carried unchanged: a box becomes the enclosing box of its four
  transformed corners, clipped to the output image. A box with no area left inside the
  output is **removed** (with its extra columns, so keep a class id there to know which).
- **masks** ``H×W`` integers: each output pixel takes the mask value under its centre
  mapped back into the input (nearest neighbour, never blended), ``mask_fill`` where that
  falls outside. Flips and crops are exact (the centres land on pixel centres).
- **keypoints** ``(k, 2 + m)`` float32 ``x, y`` (then extra columns unchanged): mapped
  point by point; order and count are kept, and a point that leaves the output image gets
  ``x = y = NaN`` (flagged, so a skeleton keeps its joints in place).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datakiln.augment._warp import invert_affine
from datakiln.errors import InvalidArgumentError

__all__ = ["move_targets"]


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points (..., 2)`` mapped by one ``2×3`` matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def move_boxes(boxes: np.ndarray, forward: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """One image's boxes under ``forward`` (see the module docstring)."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.ndim != 2 or boxes.shape[1] < 4:
        raise InvalidArgumentError(f"boxes must be a (k, 4) array of x0, y0, x1, y1 (extra "
                                   f"columns allowed), got shape {boxes.shape}")
    if boxes.shape[0] == 0:
        return boxes.copy()
    x0, y0, x1, y1 = (boxes[:, k].astype(np.float64) for k in range(4))
    corners = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1),
                        np.stack([x0, y1], 1), np.stack([x1, y1], 1)], axis=1)
    moved = _apply(forward, corners)
    h, w = out_size
    low = np.clip(moved.min(axis=1), 0.0, [w, h])
    high = np.clip(moved.max(axis=1), 0.0, [w, h])
    keep = (high[:, 0] > low[:, 0]) & (high[:, 1] > low[:, 1])
    out = np.concatenate([low, high, boxes[:, 4:].astype(np.float64)], axis=1)[keep]
    return out.astype(np.float32)


def move_keypoints(points: np.ndarray, forward: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """One image's keypoints under ``forward``; NaN where they leave the image."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] < 2:
        raise InvalidArgumentError(f"keypoints must be a (k, 2) array of x, y (extra columns "
                                   f"allowed), got shape {points.shape}")
    out = points.copy()
    xy = _apply(forward, points[:, :2].astype(np.float64))
    h, w = out_size
    outside = ~((xy[:, 0] >= 0) & (xy[:, 0] <= w) & (xy[:, 1] >= 0) & (xy[:, 1] <= h))
    xy[outside] = np.nan
    out[:, :2] = xy
    return out


def warp_mask(mask: np.ndarray, inverse: np.ndarray, out_size: tuple[int, int],
              fill: int) -> np.ndarray:
    """Nearest-neighbour warp of one ``H×W`` mask: output centre ``p`` takes ``mask`` at
    ``floor(inverse @ p)``, ``fill`` outside."""
    h, w = out_size
    height, width = mask.shape[:2]
    xs = np.arange(w, dtype=np.float64) + 0.5
    ys = np.arange(h, dtype=np.float64) + 0.5
    src_x = np.floor(inverse[0, 0] * xs[None, :] + inverse[0, 1] * ys[:, None] + inverse[0, 2])
    src_y = np.floor(inverse[1, 0] * xs[None, :] + inverse[1, 1] * ys[:, None] + inverse[1, 2])
    inside = (src_x >= 0) & (src_x < width) & (src_y >= 0) & (src_y < height)
    out = np.full((h, w) + mask.shape[2:], fill, dtype=mask.dtype)
    out[inside] = mask[src_y[inside].astype(np.int64), src_x[inside].astype(np.int64)]
    return out


def move_targets(batch: Any, forward: np.ndarray, out_sizes: np.ndarray,
                 mask_fill: int = 0) -> dict[str, list[np.ndarray] | None]:
    """New ``boxes``, ``masks`` and ``keypoints`` lists for ``batch`` (``None`` stays ``None``).

    ``forward`` is ``(N, 2, 3)`` input-to-output matrices, ``out_sizes`` ``(N, 2)`` heights
    and widths of the outputs.
    """
    out: dict[str, list[np.ndarray] | None] = {"boxes": None, "masks": None, "keypoints": None}
    n = len(batch)
    sizes = [(int(h), int(w)) for h, w in np.asarray(out_sizes).reshape(n, 2)]
    if batch.boxes is not None:
        out["boxes"] = [move_boxes(batch.boxes[i], forward[i], sizes[i]) for i in range(n)]
    if batch.keypoints is not None:
        out["keypoints"] = [move_keypoints(batch.keypoints[i], forward[i], sizes[i])
                            for i in range(n)]
    if batch.masks is not None:
        in_sizes = batch.sizes()
        inverse = invert_affine(forward) if n else forward
        masks = []
        for i in range(n):
            mask = np.asarray(batch.masks[i])
            if mask.shape[:2] != tuple(in_sizes[i]):
                raise InvalidArgumentError(f"the mask of row {int(batch.row_ids[i])} is "
                                           f"{mask.shape[:2]} but its image is "
                                           f"{tuple(int(v) for v in in_sizes[i])}: a mask must "
                                           "have its image's height and width")
            masks.append(warp_mask(mask, inverse[i], sizes[i], mask_fill))
        out["masks"] = masks
    return out
