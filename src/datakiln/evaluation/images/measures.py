"""Image-quality measures on feature rows and images: Fréchet distance (bootstrap interval),
KID, precision/recall of the generated distribution, class fidelity and memorisation.

All work on the 128 pooled features of a classifier datakiln trains on the real training
images (:class:`datakiln.synth.images._features.FeatureClassifier`), not on Inception
features: the values are comparable between runs on the same data and classifier, never
with published Inception FID/KID figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datakiln.synth.images._features import frechet_distance

__all__ = [
    "class_fidelity",
    "frechet_interval",
    "kid",
    "memorisation",
    "nearest_distances",
    "precision_recall",
    "wilson",
]


def wilson(hits: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a share ``hits / n``."""
    if n == 0:
        return [float("nan"), float("nan")]
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, float(centre - half)), min(1.0, float(centre + half))]


def frechet_interval(
    real: np.ndarray, fake: np.ndarray, *, rounds: int = 20, seed: int = 0
) -> dict[str, Any]:
    """Fréchet distance with a bootstrap 95% interval (both sides resampled ``rounds`` times)."""
    rng = np.random.default_rng(seed)
    value = frechet_distance(real, fake)
    boots = [
        frechet_distance(
            real[rng.integers(0, len(real), len(real))], fake[rng.integers(0, len(fake), len(fake))]
        )
        for _ in range(rounds)
    ]
    return {"value": value, "interval": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]}


def kid(
    real: np.ndarray, fake: np.ndarray, *, subsets: int = 20, subset_size: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Kernel inception-style distance (Bińkowski et al. 2018): unbiased MMD² with the cubic
    polynomial kernel ``(x·y / d + 1)³``, averaged over ``subsets`` random subsets; the
    interval is mean ± 1.96 standard errors over the subsets."""
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    m = min(subset_size, len(real), len(fake))
    if m == min(len(real), len(fake)):  # small sets: half-size subsets, so the subsets differ
        m = max(2, m // 2)
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        values.append(
            (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean()
        )
    mean, error = float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(len(values)))
    return {"value": mean, "interval": [mean - 1.96 * error, mean + 1.96 * error], "subset_size": m}


def _knn_radius(points: np.ndarray, k: int) -> np.ndarray:
    distances = nearest_distances(points, points, k=k + 1)
    return distances[:, -1]


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): the share of generated
    points inside some real point's k-NN ball (precision), and of real points inside some
    generated point's ball (recall)."""
    real_radius, fake_radius = _knn_radius(real, k), _knn_radius(fake, k)

    def covered(points: np.ndarray, centres: np.ndarray, radius: np.ndarray) -> float:
        inside = np.zeros(len(points), bool)
        for start in range(0, len(points), 1024):
            block = _squared(points[start : start + 1024], centres)
            inside[start : start + 1024] = (block <= radius[None, :] ** 2).any(axis=1)
        return float(inside.mean())

    return {"precision": covered(fake, real, real_radius), "recall": covered(real, fake, fake_radius), "k": k}


def _squared(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(out, 0)


def nearest_distances(
    queries: np.ndarray, reference: np.ndarray, *, k: int = 1, exclude_self: bool = False
) -> np.ndarray:
    """Euclidean distances from each query row to its ``k`` nearest reference rows (sorted,
    N × k), in blocks of 1,024 queries (memory 1,024 × len(reference) floats)."""
    a = queries.reshape(len(queries), -1).astype(np.float32)
    b = reference.reshape(len(reference), -1).astype(np.float32)
    out = np.empty((len(a), k), np.float32)
    for start in range(0, len(a), 1024):
        block = _squared(a[start : start + 1024], b)
        part = np.partition(block, k - 1, axis=1)[:, :k] if k < block.shape[1] else block
        out[start : start + 1024] = np.sqrt(np.sort(part, axis=1)[:, :k])
    return out


def memorisation(
    generated: dict[str, np.ndarray],
    holdout: dict[str, np.ndarray],
    train: dict[str, np.ndarray],
    *,
    quantile: float = 0.05,
) -> dict[str, Any]:
    """For each space (``"pixel"``, ``"feature"``): the nearest-training distance of every
    generated and holdout item; the share of generated items closer than the holdout's
    ``quantile`` (5th percentile) — about 5% when the generator copies no more than a fresh
    real image would — with its Wilson interval, and the indices of the closest generated
    items (near-copies) with their nearest training item. ``share_below_and_singular`` also
    asks that the nearest training item be much nearer than the second (distance ratio below
    the holdout's ``quantile``): blurry averages are near many training images in pixels
    without copying any; copies are near one."""
    out: dict[str, Any] = {}
    for space in generated:
        gen_d, gen_i = _nearest_with_index(generated[space], train[space])
        gen_two = nearest_distances(generated[space], train[space], k=2)
        hold_two = nearest_distances(holdout[space], train[space], k=2)
        hold_d = hold_two[:, 0]
        threshold = float(np.quantile(hold_d, quantile))
        below = gen_d < threshold
        # a copy sits much nearer one training image than the next; a blurry average does not
        gen_ratio = gen_two[:, 0] / np.maximum(gen_two[:, 1], 1e-12)
        ratio_threshold = float(np.quantile(hold_two[:, 0] / np.maximum(hold_two[:, 1], 1e-12), quantile))
        both = below & (gen_ratio < ratio_threshold)
        order = np.argsort(gen_d)
        flagged = [int(i) for i in order if below[i]]
        out[space] = {
            "threshold": threshold,
            "share_below": float(below.mean()),
            "interval": wilson(int(below.sum()), len(below)),
            "generated_median": float(np.median(gen_d)),
            "holdout_median": float(np.median(hold_d)),
            "near_copies": [
                {"generated": i, "train": int(gen_i[i]), "distance": float(gen_d[i])} for i in flagged[:24]
            ],
            "flagged": len(flagged),
            "share_below_and_singular": float(both.mean()),
            "ratio_threshold": ratio_threshold,
        }
    return out


def _nearest_with_index(queries: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = queries.reshape(len(queries), -1).astype(np.float32)
    b = reference.reshape(len(reference), -1).astype(np.float32)
    dist, index = np.empty(len(a), np.float32), np.empty(len(a), np.int64)
    for start in range(0, len(a), 1024):
        block = _squared(a[start : start + 1024], b)
        index[start : start + 1024] = block.argmin(axis=1)
        dist[start : start + 1024] = np.sqrt(block.min(axis=1))
    return dist, index


def class_fidelity(predicted: np.ndarray, requested: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy of an independent real-trained classifier on generated images of each requested
    class, overall and per class, with Wilson intervals."""
    hits = predicted == requested
    per_class = {}
    for code, name in enumerate(classes):
        members = requested == code
        if members.any():
            per_class[name] = {
                "accuracy": float(hits[members].mean()),
                "n": int(members.sum()),
                "interval": wilson(int(hits[members].sum()), int(members.sum())),
            }
    return {
        "accuracy": float(hits.mean()) if len(hits) else float("nan"),
        "interval": wilson(int(hits.sum()), len(hits)),
        "per_class": per_class,
        "chance": 1 / max(len(classes), 1),
    }
