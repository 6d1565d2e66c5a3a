"""Detection: can a classifier tell real rows from synthetic ones? ROC AUC 0.5 is ideal.

A HistGradientBoosting classifier (categories handled natively, nulls as missing) is
cross-validated on equal-sized random samples of real and synthetic rows (at most
``rows`` each); the AUC is the mean over the folds, with a 95% interval from their spread.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from datakiln.evaluation._columns import RowEncoder, fit_ready
from datakiln.evaluation._stats import take_rows

__all__ = ["detection_auc"]


def detection_auc(encoder: RowEncoder, real: pa.Table, synthetic: pa.Table, *, rows: int = 20_000,
                  folds: int = 3, seed: int = 0) -> dict[str, Any]:
    """``{"auc", "interval", "rows", "folds"}`` of a real-vs-synthetic classifier."""
    rng = np.random.default_rng([seed, 11])
    size = min(rows, real.num_rows, synthetic.num_rows)
    if size < 2 * folds:
        return {"auc": None, "interval": None, "rows": size, "folds": folds}
    real_x, mask = encoder.model_matrix(take_rows(real, size, rng))
    synth_x, _ = encoder.model_matrix(take_rows(synthetic, size, rng))
    x = fit_ready(np.vstack([real_x, synth_x]))
    y = np.r_[np.zeros(len(real_x)), np.ones(len(synth_x))]
    scores = []
    splitter = StratifiedKFold(folds, shuffle=True, random_state=int(rng.integers(2**31)))
    for train, test in splitter.split(x, y):
        model = HistGradientBoostingClassifier(categorical_features=mask, max_iter=100,
                                               random_state=int(rng.integers(2**31)))
        model.fit(x[train], y[train])
        auc = roc_auc_score(y[test], model.predict_proba(x[test])[:, 1])
        scores.append(max(auc, 1 - auc))  # a classifier that is reliably wrong also tells them apart
    mean = float(np.mean(scores))
    half = 1.96 * float(np.std(scores, ddof=1)) / np.sqrt(folds) if folds > 1 else 0.0
    return {"auc": mean, "interval": [max(0.5, mean - half), min(1.0, mean + half)],
            "rows": size, "folds": folds}
