"""Detection: can a classifier tell real rows from synthetic ones? ROC AUC 0.5 is ideal.

A HistGradientBoosting classifier (categories handled natively, nulls as missing) is
cross-validated on equal-sized random samples of real and synthetic rows (at most
``rows`` each); the AUC is the mean over the folds, with a 95% interval from their spread.

The detector is pinned so figures compare across runs and with published ones:
HistGradientBoosting (100 iterations, categories native), 5-fold stratified CV, equal
real/synthetic samples of up to 20,000 rows each. Beside the AUC, ``score`` is SDMetrics'
C2ST "detection score" ``2 * (1 - AUC)`` (1 = indistinguishable, 0 = every row told apart),
the figure TabSyn/TabDiff papers print.

The AUC is SDMetrics' reading, ``max(0.5, measured AUC)``: an AUC below 0.5 means the
classifier cannot tell the tables apart, not that it tells them apart "in reverse". It
happens when synthetic rows are copies of real ones: every row then has a twin with the
opposite label, and a classifier trained without a row learns its twin's label, scoring
far below chance (0.07 for a table against itself). Taking ``max(auc, 1 - auc)`` read that
as 0.93, "easily detectable". The measured AUC is reported as well, with a note when it is
clearly below chance (the privacy section counts the copies).
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
                  folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """A real-vs-synthetic classifier's cross-validated ROC AUC.

    Returns ``{"auc", "interval", "score", "score_interval", "measured", "measured_interval",
    "note", "rows", "folds"}``: ``auc`` is ``max(0.5, measured)`` (0.5 = indistinguishable,
    1 = every row told apart) with its 95% ``interval``; ``score`` is ``2 * (1 - auc)``;
    ``measured`` is the mean AUC of the folds as measured (below 0.5 when rows have twins
    with the opposite label), ``note`` says so.
    All are None when fewer than ``2 * folds`` rows per table are available.
    """
    rng = np.random.default_rng([seed, 11])
    size = min(rows, real.num_rows, synthetic.num_rows)
    if size < 2 * folds:
        return {"auc": None, "interval": None, "score": None, "score_interval": None,
                "measured": None, "measured_interval": None,
                "note": None, "rows": size, "folds": folds}
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
        scores.append(float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1])))
    mean = float(np.mean(scores))
    half = 1.96 * float(np.std(scores, ddof=1)) / np.sqrt(folds) if folds > 1 else 0.0
    low, high = max(0.0, mean - half), min(1.0, mean + half)
    note = None
    if high < 0.5:
        note = (f"the classifier scored below chance (AUC {mean:.3f}): synthetic rows have twins "
                "among the real rows (copies or near copies), so it cannot tell the tables apart; "
                "see the privacy section for copies")
    auc, interval = max(0.5, mean), [max(0.5, low), max(0.5, high)]
    return {"auc": auc, "interval": interval, "score": 2 * (1 - auc),
            "score_interval": [2 * (1 - interval[1]), 2 * (1 - interval[0])], "measured": mean,
            "measured_interval": [low, high], "note": note, "rows": size, "folds": folds}
