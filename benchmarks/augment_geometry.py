"""Geometric augmentation per core: datakiln's batched ops against per-sample Pillow/NumPy.

Two pipelines on decoded uint8 images, one thread (torch and BLAS pinned to one):

1. CIFAR: 256 × 32×32×3, ``RandomCrop(32, padding=4) + HorizontalFlip``.
2. 256 px: 128 × 256×256×3, ``RandomResizedCrop(224) + HorizontalFlip``.

The peer is what a map-style ``Dataset.__getitem__`` does per sample: ``np.pad`` + slice +
``[:, ::-1]`` for CIFAR; for 256 px, Pillow ``crop(box).resize((224, 224), BILINEAR)`` +
``transpose(FLIP_LEFT_RIGHT)`` + ``np.asarray`` on PIL images (as torchvision does with PIL
input; the images are handed over as PIL images, so no conversion is charged to it). Same
kinds of draws (box, flip) per sample, from ``numpy.random``. Medians of 7 runs (15 for
CIFAR) after a warm-up; images/s and ms per image.

    python benchmarks/augment_geometry.py
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from datakiln.augment import Compose, ImageBatch  # noqa: E402
from datakiln.augment._random import SampleRandom  # noqa: E402
from datakiln.augment.geometry import (  # noqa: E402
    Affine,
    HorizontalFlip,
    RandomCrop,
    RandomResizedCrop,
    Resize,
    Rotate,
)


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def ours(op: object, images: np.ndarray) -> Callable[[], object]:
    ids = np.arange(len(images))
    batch = ImageBatch(images=images, row_ids=ids)
    step = [0]

    def run() -> object:
        step[0] += 1  # fresh rows each time: new draws, as in an epoch
        return op.forward(batch, SampleRandom(ids + step[0] * len(ids)))  # type: ignore[attr-defined]
    return run


def peer_cifar(images: np.ndarray) -> Callable[[], object]:
    rng = np.random.default_rng(0)

    def run() -> object:
        out = []
        for image in images:
            padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
            top, left = rng.integers(0, 9, 2)
            crop = padded[top:top + 32, left:left + 32]
            out.append(np.ascontiguousarray(crop[:, ::-1]) if rng.random() < 0.5 else crop)
        return np.stack(out)
    return run


def peer_rrc(images: list[Image.Image]) -> Callable[[], object]:
    rng = np.random.default_rng(0)

    def box(width: int, height: int) -> tuple[int, int, int, int]:
        for _ in range(10):
            area = width * height * rng.uniform(0.08, 1.0)
            aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < w <= width and 0 < h <= height:
                top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
                return int(left), int(top), int(left + w), int(top + h)
        return 0, 0, width, height

    def run() -> object:
        out = []
        for image in images:
            resized = image.crop(box(*image.size)).resize((224, 224), Image.Resampling.BILINEAR)
            if rng.random() < 0.5:
                resized = resized.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            out.append(np.asarray(resized))
        return np.stack(out)
    return run


def photos(n: int, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(1)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        a, b = rng.uniform(1, 8, 2)
        wave = 128 + 100 * np.sin(a * x + b * y + i)[..., None] * np.cos(np.arange(3) + a)
        out[i] = np.clip(wave + rng.normal(0, 6, (size, size, 3)), 0, 255).astype(np.uint8)
    return out


def main() -> None:
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    small, big = photos(256, 32), photos(128, 256)
    big_pil = [Image.fromarray(image) for image in big]
    rows: list[tuple[str, int, float]] = []

    def measure(name: str, run: Callable[[], object], n: int, repeats: int = 7) -> float:
        seconds = median_seconds(run, repeats)
        rows.append((name, n, seconds))
        return seconds

    crop_flip = Compose([RandomCrop(32, padding=4), HorizontalFlip()])
    ours_cifar = measure("datakiln crop(32, pad 4) + flip", ours(crop_flip, small), 256, 15)
    peer_c = measure("per-sample NumPy crop + flip", peer_cifar(small), 256, 15)
    backends = ["numpy"] + (["torch"] if torch is not None else [])
    best_rrc = math.inf
    for backend in backends:
        op = Compose([RandomResizedCrop(224, backend=backend), HorizontalFlip()])
        best_rrc = min(best_rrc, measure(f"datakiln rrc(224) + flip [{backend}]", ours(op, big), 128))
    peer_r = measure("per-sample Pillow rrc(224) + flip", peer_rrc(big_pil), 128)
    for backend in backends:
        measure(f"datakiln resize(224) [{backend}]", ours(Resize(224, backend=backend), big), 128, 5)
        measure(f"datakiln rotate(30) [{backend}]", ours(Rotate(30, backend=backend), big), 128, 3)
    measure("datakiln affine [auto]", ours(Affine(15, (0.8, 1.2), (0.1, 0.1), 10), big), 128, 3)

    print(f"{'pipeline (one core)':42s} {'images/s':>10s} {'ms/image':>9s}")
    for name, n, seconds in rows:
        print(f"{name:42s} {n / seconds:10.0f} {seconds / n * 1e3:9.3f}")
    print(f"headline: crop+flip {peer_c / ours_cifar:.1f}x per-sample NumPy "
          f"({256 / ours_cifar:,.0f} images/s per core); rrc(224)+flip {peer_r / best_rrc:.1f}x "
          f"per-sample Pillow ({best_rrc / 128 * 1e3:.2f} ms per image per core)")


if __name__ == "__main__":
    main()
