"""``method="auto"``: which balancing helps a model on *this* data? Measure, then choose.

On a uniform sample (at most ``ROWS`` rows) split 80/20 with stratification, the training
part is balanced by each candidate method (and left alone, as the baseline), a
HistGradientBoosting classifier is trained on it, and the real, untouched test part
scores it: minority-class recall and F1, balanced accuracy and PR AUC (average precision
of the minority class). The method with the best minority F1 wins (ties: balanced
accuracy); the table is kept in the report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score, recall_score
from sklearn.model_selection import train_test_split

from datakiln.balancing._codec import FeatureCodec
from datakiln.balancing._report import check_classes
from datakiln.balancing.methods import METHODS
from datakiln.clean.base import sample_table
from datakiln.dataset.dataset import Dataset
from datakiln.errors import InvalidArgumentError, MemoryBudgetError

__all__ = ["compare_methods", "score_methods"]

ROWS = 50_000
CANDIDATES = ("none", "random_over", "random_under", "smote", "borderline_smote", "adasyn", "smote_tomek",
              "smote_enn", "tomek", "enn", "near_miss", "synth")
NUMERIC_ONLY = {"borderline_smote", "adasyn", "smote_tomek", "smote_enn"}  # they would blend category codes


def _model_input(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = x.copy()
    out[:, mask] = np.minimum(out[:, mask], 250)  # HistGradientBoosting takes < 255 category codes
    return out


Arrays = tuple[np.ndarray, np.ndarray]


def _resample(name: str, balancer: Any, codec: FeatureCodec, x: np.ndarray, y: np.ndarray) -> Arrays:
    if name == "none":
        return x, y
    if name == "synth":
        from datakiln.balancing._synth import synthesize_minority

        new = synthesize_minority(Dataset.from_arrow(codec.decode(x, y)), codec, balancer, y)
        if not new.num_rows:
            return x, y
        new_x, new_y = codec.encode(new)
        return np.vstack([x, new_x]), np.r_[y, new_y]
    method = balancer._resolve(METHODS[name], codec)
    balancer.check_neighbours(method, codec, y)
    return balancer.make_sampler(method, codec).fit_resample(x, y)


def score_methods(codec: FeatureCodec, balancer: Any, x: np.ndarray, y: np.ndarray, test_x: np.ndarray,
                  test_y: np.ndarray, candidates: tuple[str, ...] = CANDIDATES) -> list[dict[str, Any]]:
    """One record per method: rows trained on and the test metrics of the minority class."""
    values, counts = np.unique(y, return_counts=True)
    minority = values[np.argmin(counts)]
    mask = codec.categorical_mask
    rows = []
    for name in candidates:
        if name in NUMERIC_ONLY and mask.any():
            rows.append({"method": name, "skipped": "interpolates every feature; the data has categories"})
            continue
        try:
            train_x, train_y = _resample(name, balancer, codec, x, y)
        except (ValueError, MemoryBudgetError) as exc:  # a class too small for k, too large for SMOTEN
            rows.append({"method": name, "error": str(exc)})
            continue
        model = HistGradientBoostingClassifier(categorical_features=mask, random_state=balancer.seed)
        model.fit(_model_input(train_x, mask), train_y)
        predicted = model.predict(_model_input(test_x, mask))
        proba = model.predict_proba(_model_input(test_x, mask))[:, list(model.classes_).index(minority)]
        truth = test_y == minority
        rows.append({"method": name, "trained_rows": int(len(train_y)),
                     "minority_recall": float(recall_score(truth, predicted == minority, zero_division=0)),
                     "minority_f1": float(f1_score(truth, predicted == minority, zero_division=0)),
                     "balanced_accuracy": float(balanced_accuracy_score(test_y, predicted)),
                     "pr_auc": float(average_precision_score(truth, proba))})
    return rows


def compare_methods(dataset: Dataset, codec: FeatureCodec, balancer: Any,
                    budget: int | None) -> tuple[list[dict[str, Any]], str]:
    """(the comparison table, the winning method's name)."""
    table = sample_table(dataset, dataset.columns, ROWS, balancer.seed, budget)
    x, y = codec.encode(table)
    check_classes(codec, y)
    found = np.bincount(y, minlength=len(codec.classes) + 1)
    lonely = [str(c) for c, n in zip([*codec.classes, "(null)"], found) if n == 1]
    if lonely:
        where = " in the sample" if len(y) >= ROWS else ""
        raise InvalidArgumentError(
            f"method='auto' compares methods on a stratified holdout, which needs at least 2 rows of "
            f"every class; class {lonely[0]!r} of {codec.target!r} has 1 row{where}: name a method instead "
            f"(random_over works with a class of any size), or drop that class")
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=0.2, stratify=y,
                                                        random_state=balancer.seed)
    rows = score_methods(codec, balancer, train_x, train_y, test_x, test_y)
    scored = [r for r in rows if "minority_f1" in r]
    best = max(scored, key=lambda r: (r["minority_f1"], r["balanced_accuracy"]))["method"]
    for row in rows:
        row["chosen"] = row["method"] == best
    return rows, best
