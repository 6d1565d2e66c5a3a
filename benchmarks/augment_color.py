"""Colour augmentation throughput on one core: datakiln's batched kernels vs per-sample Pillow.

Pipelines (as in the 256 px case of benchmarks/images.py, after the crop):
  * ColorJitter(0.4, 0.4, 0.4) + Normalize on 128 × 224 × 224 × 3 uint8 batches,
  * Normalize alone on 256 × 32 × 32 × 3 (the CIFAR case).
Contestants: datakiln with backend "auto" (NumPy + torch's clamp), "numpy" and "torch";
the per-sample way a DataLoader worker does it: Pillow's ImageEnhance (Brightness,
Contrast, Color) in a random order per image, then NumPy normalisation per image.
Images are smooth photographic-like content (blurred noise), generated here.
One thread (OMP/MKL and torch set to 1), medians of 5 runs after a warm-up.
The last line prints datakiln auto / Pillow per sample.

    python benchmarks/augment_color.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402
from scipy import ndimage  # noqa: E402

from datakiln.augment import ColorJitter, Compose, Normalize  # noqa: E402
from datakiln.augment.base import ImageBatch  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def photos(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.normal(128, 60, (n, size // 8, size // 8, 3))
    big = ndimage.zoom(small, (1, 8, 8, 1), order=1)
    return np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8)


def median_rate(fn, n_images: int, runs: int = 5) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n_images / statistics.median(times)


def pillow_per_sample(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(images.shape, np.float32)
    enhancers = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)
    for i, array in enumerate(images):
        image = Image.fromarray(array)
        for k in rng.permutation(3):
            image = enhancers[k](image).enhance(rng.uniform(0.6, 1.4))
        out[i] = (np.asarray(image, np.float32) / 255 - MEAN) / STD
    return out


def main() -> None:
    import torch

    torch.set_num_threads(1)
    big = photos(128, 224)
    small = photos(256, 32, seed=1)
    batch = ImageBatch(images=big, row_ids=np.arange(len(big)))
    small_batch = ImageBatch(images=small, row_ids=np.arange(len(small)))
    rows = []
    for backend in ("auto", "numpy", "torch"):
        pipe = Compose([ColorJitter(0.4, 0.4, 0.4, backend=backend), Normalize()])
        rows.append((f"datakiln jitter+normalize ({backend})", "128x224x224",
                     median_rate(lambda pipe=pipe: pipe(batch), len(big))))
    rng = np.random.default_rng(0)
    rows.append(("Pillow ImageEnhance per sample + NumPy normalize", "128x224x224",
                 median_rate(lambda: pillow_per_sample(big, rng), len(big))))
    rows.append(("datakiln Normalize", "128x224x224", median_rate(lambda: Normalize()(batch), len(big))))
    rows.append(("datakiln Normalize", "256x32x32",
                 median_rate(lambda: Normalize()(small_batch), len(small), runs=15)))
    rows.append(("NumPy (x / 255 - mean) / std", "256x32x32",
                 median_rate(lambda: (small / np.float32(255) - MEAN) / STD, len(small), runs=15)))
    print(f"{'contestant':52} {'batch':12} {'images/s (1 core)':>18}")
    for name, shape, rate in rows:
        print(f"{name:52} {shape:12} {rate:18,.0f}")
    ours, peer = rows[0][2], rows[3][2]
    print(f"RESULT jitter+normalize per core: datakiln auto {ours:,.0f}/s vs Pillow per sample "
          f"{peer:,.0f}/s = {ours / peer:.1f}x")


if __name__ == "__main__":
    main()
