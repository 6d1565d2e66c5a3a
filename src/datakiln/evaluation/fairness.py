"""Group fairness of a classifier's predictions: demographic parity and equalized odds.

The definitions are fairlearn's (Agarwal et al. 2018; Hardt et al. 2016), for a binary
decision "predicted positive" against a sensitive attribute with two or more groups:

- demographic-parity difference: the largest minus the smallest selection rate
  P(ŷ = positive | group) over the groups;
- equalized-odds difference: the larger of the true-positive-rate gap and the
  false-positive-rate gap between groups (each the largest minus the smallest rate).

0 is perfectly even. Groups with no rows of a kind (no real positives for a TPR, no real
negatives for an FPR) are left out of that gap. Each difference has a 95% bootstrap
interval over the test rows. Written here (a few lines of NumPy) so the evaluation needs
no extra dependency; the tests check it against values computed by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datakiln.evaluation._stats import bootstrap_interval

__all__ = ["group_fairness"]


def _rates(hit: np.ndarray, group: np.ndarray, where: np.ndarray, groups: int) -> np.ndarray:
    """The mean of ``hit`` per group over the rows in ``where`` (NaN where a group has none)."""
    total = np.bincount(group[where], minlength=groups).astype(float)
    hits = np.bincount(group[where], weights=hit[where].astype(float), minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hits / np.maximum(total, 1), np.nan)


def _gap(rates: np.ndarray) -> float:
    present = rates[~np.isnan(rates)]
    if len(present) < 2:
        raise ValueError("fewer than two groups")
    return float(present.max() - present.min())


def group_fairness(truth: np.ndarray, predicted: np.ndarray, groups: np.ndarray, *,
                   rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Demographic-parity and equalized-odds differences of binary predictions across groups.

    Parameters
    ----------
    truth, predicted : array of bool
        The real outcome and the model's decision ("positive") of each test row.
    groups : array
        The sensitive attribute of each row (any hashable values; missing values form a group).
    rng : numpy.random.Generator, optional
        Draws the bootstrap intervals (none without it).

    Returns
    -------
    dict
        ``demographic_parity_difference``, ``equalized_odds_difference``, their
        ``*_interval``, and ``groups``: per group its ``rows``, ``selection_rate``,
        ``true_positive_rate`` and ``false_positive_rate`` (None where undefined).
    """
    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    labels, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    k = len(labels)
    everyone = np.ones(len(truth), bool)

    def parity(index: np.ndarray) -> float:
        return _gap(_rates(predicted[index], codes[index], everyone[index], k))

    def odds(index: np.ndarray) -> float:
        tpr = _rates(predicted[index], codes[index], truth[index], k)
        fpr = _rates(predicted[index], codes[index], ~truth[index], k)
        gaps = []
        for rates in (tpr, fpr):
            try:
                gaps.append(_gap(rates))
            except ValueError:
                pass
        if not gaps:
            raise ValueError("no rate is defined for two groups")
        return max(gaps)

    out: dict[str, Any] = {}
    for name, metric in (("demographic_parity_difference", parity), ("equalized_odds_difference", odds)):
        try:
            out[name] = metric(np.arange(len(truth)))
        except ValueError:
            out[name] = None
        out[f"{name}_interval"] = (bootstrap_interval(metric, len(truth), rng)
                                   if out[name] is not None and rng is not None else None)
    selection = _rates(predicted, codes, everyone, k)
    tpr, fpr = _rates(predicted, codes, truth, k), _rates(predicted, codes, ~truth, k)
    counts = np.bincount(codes, minlength=k)

    def value(x: float) -> float | None:
        return None if np.isnan(x) else float(x)

    out["groups"] = {str(label): {"rows": int(counts[i]), "selection_rate": value(selection[i]),
                                  "true_positive_rate": value(tpr[i]), "false_positive_rate": value(fpr[i])}
                     for i, label in enumerate(labels)}
    return out
