"""ML utility: does a model trained on synthetic rows work on real ones?

Train-synthetic-test-real (TSTR) against train-real-test-real (TRTR), both tested on the
same real holdout (when none is given, 20% of the real sample is held out and the real
model trains on the other 80%), plus "augmented": real and synthetic rows together.
The model is scikit-learn's HistGradientBoosting with native categorical support.
Classification reports accuracy, macro-F1, F1 of the rarest real class and ROC AUC
(one-vs-rest macro for several classes); regression reports R² and MAE. Each test metric
has a 95% bootstrap interval over the holdout rows. With ``sensitive`` (a classification
target), each model's decisions "predicts the rarest real class" are also scored for group
fairness across the sensitive column's values (``evaluation.fairness``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, r2_score, roc_auc_score

from datakiln.errors import InvalidArgumentError
from datakiln.evaluation._columns import RowEncoder, fit_ready, numbers
from datakiln.evaluation._stats import bootstrap_interval, take_rows
from datakiln.evaluation.fairness import group_fairness

__all__ = ["ml_utility"]

MIN_TEST_ROWS = 20  # fewer real test rows than this: the section says its numbers mean little


def _labels(encoder: RowEncoder, table: pa.Table, target: str) -> np.ndarray:
    if encoder.roles[target] == "discrete":
        return encoder.codes(table, target)
    return numbers(table[target])


def _binary_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula; ties count one half."""
    positives = int(truth.sum())
    negatives = len(truth) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes")
    ranks = rankdata(score)
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _f1_scores(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """F1 of every class of ``classes`` (0 where a class is neither true nor predicted)."""
    true_codes, predicted_codes = np.searchsorted(classes, y), np.searchsorted(classes, predicted)
    k = len(classes)
    hits = np.bincount(true_codes[true_codes == predicted_codes], minlength=k)
    denominator = np.bincount(true_codes, minlength=k) + np.bincount(predicted_codes, minlength=k)
    return np.where(denominator > 0, 2 * hits / np.maximum(denominator, 1), 0.0)


def _classification(y: np.ndarray, proba: np.ndarray, classes: np.ndarray, minority: float | None,
                    rng: np.random.Generator) -> dict[str, Any]:
    predicted = classes[np.argmax(proba, axis=1)]
    minority_index = None if minority is None else int(np.searchsorted(classes, minority))

    def minority_f1(index: np.ndarray) -> float:
        if minority_index is None:
            raise ValueError("the real data has no class to call the minority")
        return float(_f1_scores(y[index], predicted[index], classes)[minority_index])

    def auc(index: np.ndarray) -> float:
        if len(classes) == 2:
            return _binary_auc(y[index] == classes[1], proba[index, 1])
        present = np.isin(classes, y[index])
        kept = proba[index][:, present]
        return roc_auc_score(y[index], kept / kept.sum(1, keepdims=True), multi_class="ovr",
                             average="macro", labels=classes[present])

    def macro_f1(index: np.ndarray) -> float:
        present = np.isin(classes, np.r_[y[index], predicted[index]])
        return float(_f1_scores(y[index], predicted[index], classes)[present].mean())

    metrics = {
        "accuracy": lambda i: float(np.mean(y[i] == predicted[i])),
        "macro_f1": macro_f1,
        "minority_f1": minority_f1,
        "roc_auc": auc,
    }
    out: dict[str, Any] = {}
    for name, metric in metrics.items():
        try:
            out[name] = float(metric(np.arange(len(y))))
        except ValueError:
            out[name] = None
        out[f"{name}_interval"] = bootstrap_interval(metric, len(y), rng) if out[name] is not None else None
    return out


def _regression(y: np.ndarray, predicted: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, metric in {"r2": lambda i: r2_score(y[i], predicted[i]),
                         "mae": lambda i: mean_absolute_error(y[i], predicted[i])}.items():
        out[name] = float(metric(np.arange(len(y))))
        out[f"{name}_interval"] = bootstrap_interval(metric, len(y), rng)
    return out


def ml_utility(encoder: RowEncoder, real: pa.Table, synthetic: pa.Table, holdout: pa.Table | None,
               target: str, *, rows: int = 50_000, seed: int = 0,
               sensitive: str | None = None) -> dict[str, Any]:
    """The utility section: task, sizes, and metrics of the real, synthetic and augmented models.

    ``sensitive`` (a compared column; classification only) adds each model's ``fairness``:
    demographic-parity and equalized-odds differences of its decisions across that column's
    groups on the test rows (the positive decision: the rarest real class).
    """
    if target not in encoder.roles:
        raise InvalidArgumentError(f"target {target!r} is not a compared column; the columns are "
                                   f"{list(encoder.roles)}")
    if sensitive is not None:
        if sensitive not in encoder.roles:
            raise InvalidArgumentError(f"sensitive column {sensitive!r} is not a compared column; the "
                                       f"columns are {list(encoder.roles)}")
        if sensitive == target or encoder.roles[target] != "discrete":
            raise InvalidArgumentError(f"fairness needs a classification target other than the sensitive "
                                       f"column; got target {target!r} ({encoder.roles[target]}) and "
                                       f"sensitive {sensitive!r}")
    rng = np.random.default_rng([seed, 13])
    real = take_rows(real, rows, rng)
    if holdout is None:  # hold out 20% of the real sample
        order = rng.permutation(real.num_rows)
        cut = int(real.num_rows * 0.8)
        real, holdout = real.take(pa.array(np.sort(order[:cut]))), real.take(pa.array(np.sort(order[cut:])))
        holdout_source = "20% of the real sample"
    else:
        holdout_source = "the holdout data"
    holdout = take_rows(holdout, rows, rng)
    synthetic = take_rows(synthetic, rows, rng)
    task = "classification" if encoder.roles[target] == "discrete" else "regression"
    test_x, mask = encoder.model_matrix(holdout, exclude=(target,))
    test_y = _labels(encoder, holdout, target)
    if task == "classification":
        _check_labels(encoder, holdout, target, test_y)
    keep = np.isfinite(test_y)  # a missing, NaN or ±inf target cannot be scored (or regressed on)
    test_x, test_y = test_x[keep], test_y[keep]
    test_groups = (np.asarray(holdout[sensitive].to_pylist(), dtype=object)[keep]
                   if sensitive is not None else None)
    real_y = _labels(encoder, real, target)
    minority, classes = None, np.zeros(0)
    if task == "classification":
        values, counts = np.unique(real_y[~np.isnan(real_y)], return_counts=True)
        minority = float(values[np.argmin(counts)]) if len(values) else None
        synth_y = _labels(encoder, synthetic, target)
        # every class the models may meet or predict, once for all three
        classes = np.union1d(np.union1d(values, test_y), synth_y[~np.isnan(synth_y)])
    models: dict[str, Any] = {}
    for name, parts in (("real", [real]), ("synthetic", [synthetic]), ("augmented", [real, synthetic])):
        xs, ys = zip(*[(encoder.model_matrix(t, exclude=(target,))[0], _labels(encoder, t, target))
                       for t in parts])
        x, y = np.vstack(xs), np.concatenate(ys)
        x, y = fit_ready(x[np.isfinite(y)]), y[np.isfinite(y)]
        if len(test_y) == 0:
            models[name] = {"trained_rows": int(len(y)), "error": f"no test rows with a {target!r} "
                            f"value (missing, NaN and ±inf targets are left out; the real data has "
                            f"{real.num_rows + holdout.num_rows} row(s)); "
                            "pass more real rows or a holdout"}
            continue
        if len(np.unique(y)) < (2 if task == "classification" else 1):
            models[name] = {"trained_rows": int(len(y)), "error": "fewer than two target values"}
            continue
        if task == "classification":
            model = HistGradientBoostingClassifier(categorical_features=mask, random_state=seed)
            model.fit(x, y)
            proba = np.zeros((len(test_x), len(classes)))
            proba[:, np.searchsorted(classes, model.classes_)] = model.predict_proba(test_x)
            metrics = _classification(test_y, proba, classes, minority, rng)
            if test_groups is not None and minority is not None:
                decided = classes[np.argmax(proba, axis=1)] == minority
                metrics["fairness"] = group_fairness(test_y == minority, decided, test_groups, rng=rng)
        else:
            model = HistGradientBoostingRegressor(categorical_features=mask, random_state=seed)
            model.fit(x, y)
            metrics = _regression(test_y, model.predict(test_x), rng)
        models[name] = {"trained_rows": int(len(y)), **metrics}
    headline = "roc_auc" if task == "classification" else "r2"
    note = None
    if len(test_y) < MIN_TEST_ROWS:
        note = (f"only {len(test_y)} real test row(s) with a {target!r} value: too few for the scores "
                f"to mean much (aim for {MIN_TEST_ROWS} or more; pass a holdout)")
    real_score = models.get("real", {}).get(headline)
    synth_score = models.get("synthetic", {}).get(headline)
    augmented_score = models.get("augmented", {}).get(headline)
    return {"target": target, "task": task, "model": "HistGradientBoosting", "test_rows": int(len(test_y)),
            "holdout": holdout_source, "headline_metric": headline, "note": note,
            "minority_class": _class_name(encoder, target, minority), "sensitive": sensitive,
            "real": models.get("real"), "synthetic": models.get("synthetic"),
            "augmented": models.get("augmented"),
            "synthetic_to_real_ratio": (synth_score / real_score if real_score and synth_score is not None
                                        else None),
            "augmentation_gain": (augmented_score - real_score if augmented_score is not None
                                  and real_score is not None else None)}


def _check_labels(encoder: RowEncoder, holdout: pa.Table, target: str, codes: np.ndarray) -> None:
    """Refuse a holdout whose classes the real data mostly does not have (e.g. ">50K." vs ">50K")."""
    unknown = codes == len(encoder.vocab[target])
    if unknown.mean() > 0.5:
        seen = sorted({str(v) for v in holdout[target].filter(pa.array(unknown)).to_pylist()[:1000]})[:5]
        raise InvalidArgumentError(
            f"{unknown.mean():.0%} of the holdout's {target!r} values never occur in the real data "
            f"(e.g. {seen}; the real classes are {encoder.vocab[target].to_pylist()[:5]}); make the labels "
            f"match, e.g. strip a trailing '.'")


def _class_name(encoder: RowEncoder, target: str, code: float | None) -> Any:
    if code is None:
        return None
    vocab = encoder.vocab[target]
    return vocab[int(code)].as_py() if int(code) < len(vocab) else "(other)"
