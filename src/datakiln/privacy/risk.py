"""Re-identification risk of a table: k-anonymity, l-diversity, t-closeness and kin.

An *equivalence class* is the set of rows sharing one combination of quasi-identifier values
(a null is a value of its own). Every measure here is a function of the counts per
(class, sensitive value), so :func:`risk` gathers only those counts, in one streaming pass
over the batches (:mod:`datakiln.privacy._counts`): memory follows the number of distinct
combinations, never the row count, and no pandas copy of the data is made.

Definitions (they are pycanon's, checked equal by the tests, so figures compare across tools):

- **k** (k-anonymity): the size of the smallest class.
- **distinct l** (l-diversity, Machanavajjhala et al.): the smallest number of distinct
  sensitive values in any class (the minimum over sensitive columns).
- **entropy l**: ``floor(min over classes of exp(H))`` with ``H`` the natural-log entropy of
  the class's sensitive values (pycanon's integer convention; ``entropy_l`` keeps the float).
- **t** (t-closeness, Li et al. 2007): the largest Earth Mover's Distance between a class's
  sensitive distribution and the whole table's — the *ordered distance* for numbers, dates and
  times (``1/(m-1) * sum_i |sum_{j<=i} (q_j - p_j)|`` over the ``m`` sorted values), the
  *equal distance* for categories (``1/2 * sum_i |q_i - p_i|``).
- **alpha** ((alpha, k)-anonymity): the largest share of one sensitive value inside a class.
- **basic beta** (beta-likeness): the largest relative gain ``(q - p) / p`` of a sensitive
  value in a class; **enhanced beta**: pycanon's ``min(basic beta, -ln(min p))``.
- **delta** (delta-disclosure): the largest ``|ln(q / p)|`` over values present in a class.

>>> report = risk(ds, quasi_identifiers=["age", "sex", "race"], sensitive=["income"], k=10)  # doctest: +SKIP
>>> report.k, report.share_below_k, report.l, report.t                                       # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.errors import InvalidArgumentError
from datakiln.privacy._counts import COUNT, check_columns, combine_codes, group_counts, value_codes

_EDGES = (1, 2, 3, 5, 10, 20, 50, 100, 1000)
_DENSE_CELLS = 4_000_000  # classes x values held at once for the ordered distance

DEFINITIONS = {
    "k": "size of the smallest equivalence class (rows sharing all quasi-identifier values; "
         "null is a value)",
    "l": "distinct l-diversity: fewest distinct sensitive values in any class",
    "l_entropy": "entropy l-diversity: floor(min over classes of exp(entropy, natural log))",
    "t": "t-closeness: largest Earth Mover's Distance between a class's and the table's "
         "sensitive distribution (ordered distance for numbers/dates, equal distance for "
         "categories; Li et al. 2007)",
    "alpha": "largest share of one sensitive value within a class",
    "beta": "basic beta-likeness: largest (q - p) / p of a sensitive value in a class",
    "delta": "delta-disclosure: largest |ln(q / p)| over sensitive values present in a class",
}


@dataclass
class SensitiveRisk:
    """The measures of one sensitive column (see the module docstring for definitions)."""

    column: str
    distance: str  # "ordered" or "equal"
    values: int
    l: int  # noqa: E741 (the measure's name)
    l_entropy: int
    entropy_l: float
    alpha: float
    t: float
    beta: float
    beta_enhanced: float
    delta: float


@dataclass
class RiskReport:
    """Re-identification risk of a table under some quasi-identifiers.

    Attributes
    ----------
    rows, classes : int
        Rows counted and equivalence classes found.
    k : int
        The smallest class size (0 for an empty table).
    k_requested : int or None
        The k asked for; ``rows_below_k`` / ``classes_below_k`` / ``share_below_k`` count the
        rows and classes in classes smaller than it (these rows would need suppression).
    histogram : list of dict
        Classes and rows per class-size bin (``{"sizes": "5-9", "classes": .., "rows": ..}``).
    max_risk, average_risk : float
        Prosecutor risks: ``1 / k`` and ``classes / rows``.
    average_class_size : float
        pycanon's C_avg: ``rows / (classes * k)``.
    l, l_entropy, t, alpha, beta, beta_enhanced, delta : number or None
        Over all sensitive columns (min for l, max for the others); None without any.
    per_sensitive : list of SensitiveRisk
        The same per sensitive column.
    satisfied : dict
        ``{"k": bool, "l": bool, "t": bool}`` for the thresholds asked for.
    """

    rows: int
    quasi_identifiers: list[str]
    sensitive: list[str]
    classes: int
    k: int
    k_requested: int | None
    rows_below_k: int
    classes_below_k: int
    share_below_k: float
    max_risk: float
    average_risk: float
    average_class_size: float
    histogram: list[dict[str, Any]]
    l: int | None = None  # noqa: E741
    l_entropy: int | None = None
    t: float | None = None
    alpha: float | None = None
    beta: float | None = None
    beta_enhanced: float | None = None
    delta: float | None = None
    per_sensitive: list[SensitiveRisk] = field(default_factory=list)
    satisfied: dict[str, bool] = field(default_factory=dict)
    definitions: dict[str, str] = field(default_factory=lambda: dict(DEFINITIONS))
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain Python data (JSON-ready)."""
        return asdict(self)

    def to_json(self, path: str | os.PathLike[str] | None = None, *, overwrite: bool = False,
                inputs: Iterable[str | os.PathLike[str]] = ()) -> str:
        """The report as JSON (first key ``"datakiln": {"kind": "risk-report", ...}``), written
        atomically to ``path`` when given (an existing file only if datakiln wrote it or with
        ``overwrite=True``, never one of ``inputs``)."""
        from datakiln.io.write import report_marker, write_text_atomic

        text = json.dumps({**report_marker("risk-report"), **self.to_dict()}, indent=2, default=str)
        if path is not None:
            write_text_atomic(path, text, overwrite=overwrite, inputs=inputs)
        return text


def _check_threshold(name: str, value: float | None, low: float, high: float | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low or (
            high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidArgumentError(f"{name} must be a number {bound}, got {value!r}")


def risk(data: Any, quasi_identifiers: Sequence[str], sensitive: Sequence[str] = (), *,
         k: int | None = None, l: int | None = None, t: float | None = None,  # noqa: E741
         memory_budget: int | str | None = "1GB",
         on_progress: Callable[[int], None] | None = None) -> RiskReport:
    """Measure the re-identification risk of a table, streaming over its batches.

    Parameters
    ----------
    data : Dataset, pyarrow.Table or pandas.DataFrame
        The table.
    quasi_identifiers : list of str
        Columns an attacker may know from elsewhere (age, sex, ZIP code ...).
    sensitive : list of str, optional
        Columns whose values must not be inferable (l-diversity, t-closeness ...).
    k, l, t : number, optional
        Thresholds to check: classes of at least ``k`` rows, ``l`` distinct sensitive
        values per class, an EMD of at most ``t``; the result says whether each holds.
    memory_budget : int or str, optional
        Bytes the counts per combination may take (default ``"1GB"``).
    on_progress : callable, optional
        Called with each batch's row count.

    Returns
    -------
    RiskReport
    """
    from datakiln.dataset.dataset import as_dataset

    started = time.perf_counter()
    dataset = as_dataset(data, what="risk")
    qis, sens = list(quasi_identifiers), list(sensitive)
    if not qis:
        raise InvalidArgumentError(
            "risk needs at least one quasi-identifier column (quasi_identifiers=[...])")
    check_columns(qis, dataset, "quasi-identifiers")
    check_columns(sens, dataset, "sensitive columns")
    both = sorted(set(qis) & set(sens))
    if both or len(set(qis)) < len(qis) or len(set(sens)) < len(sens):
        raise InvalidArgumentError(
            f"a column may appear once, as a quasi-identifier or as sensitive: {both or qis + sens}")
    _check_threshold("k", k, 1)
    _check_threshold("l", l, 1)
    _check_threshold("t", t, 0, 1)
    tables = group_counts(dataset, [[*qis, s] for s in sens] or [qis],
                          memory_budget=memory_budget, on_progress=on_progress)
    classes, counts = class_ids(tables[0], qis)
    report = class_report(np.bincount(classes, weights=counts).astype(np.int64), qis, sens, k)
    for column, table in zip(sens, tables[:len(sens)], strict=True):
        report.per_sensitive.append(sensitive_measures(table, qis, column))
    if report.per_sensitive:
        per = report.per_sensitive
        report.l = min(s.l for s in per)
        report.l_entropy = min(s.l_entropy for s in per)
        for name in ("t", "alpha", "beta", "beta_enhanced", "delta"):
            setattr(report, name, max(getattr(s, name) for s in per))
    if l is not None:
        report.satisfied["l"] = report.l is not None and report.l >= l
    if t is not None:
        report.satisfied["t"] = report.t is not None and report.t <= t
    report.seconds = time.perf_counter() - started
    return report


def class_ids(table: pa.Table, qis: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Dense class ids (0..classes-1) of each row of a count table, and its counts."""
    codes, sizes = [], []
    for name in qis:
        code, values, _ = value_codes(table[name])
        codes.append(code)
        sizes.append(len(values) + 1)
    key = combine_codes(codes, sizes)
    _, dense = np.unique(key, return_inverse=True)
    return dense.astype(np.int64), table[COUNT].to_numpy().astype(np.int64)


def class_report(sizes: np.ndarray, qis: Sequence[str], sens: Sequence[str],
                 k: int | None) -> RiskReport:
    """The class-size part of a :class:`RiskReport` from the class sizes."""
    rows, classes = int(sizes.sum()), len(sizes)
    smallest = int(sizes.min()) if classes else 0
    below = sizes < k if k is not None else np.zeros(classes, dtype=bool)
    histogram = []
    for low, high in zip(_EDGES, (*_EDGES[1:], None), strict=True):
        inside = (sizes >= low) & (sizes < high) if high is not None else sizes >= low
        label = (str(low) if high == low + 1 else f"{low}-{high - 1}") if high is not None else f"{low}+"
        histogram.append({"sizes": label, "classes": int(inside.sum()), "rows": int(sizes[inside].sum())})
    report = RiskReport(
        rows=rows, quasi_identifiers=list(qis), sensitive=list(sens), classes=classes, k=smallest,
        k_requested=k, rows_below_k=int(sizes[below].sum()), classes_below_k=int(below.sum()),
        share_below_k=float(sizes[below].sum() / rows) if rows else 0.0,
        max_risk=1.0 / smallest if smallest else 0.0,
        average_risk=classes / rows if rows else 0.0,
        average_class_size=rows / (classes * smallest) if smallest else 0.0, histogram=histogram)
    if k is not None:
        report.satisfied["k"] = smallest >= k
    return report


def _is_ordered(dtype: pa.DataType) -> bool:
    return (pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
            or pa.types.is_temporal(dtype) or pa.types.is_boolean(dtype))


def sensitive_measures(table: pa.Table, qis: Sequence[str], column: str) -> SensitiveRisk:
    """The l/t/alpha/beta/delta measures of one sensitive column from its count table
    (quasi-identifiers + the column + counts, one row per present (class, value))."""
    if table.num_rows == 0:
        return SensitiveRisk(column, "equal", 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    cls, cnt = class_ids(table, qis)
    val, values, has_null = value_codes(table[column])
    m = len(values) + int(has_null)
    size = np.bincount(cls, weights=cnt)
    p = np.bincount(val, weights=cnt, minlength=m) / cnt.sum()
    q = cnt / size[cls]
    present = np.bincount(cls)  # distinct sensitive values per class
    entropy = -np.bincount(cls, weights=q * np.log(q))
    entropy_l = np.exp(1) ** entropy
    ordered = _is_ordered(table.schema.field(column).type)
    gain = np.full(len(size), -np.inf)
    np.maximum.at(gain, cls, (q - p[val]) / p[val])
    gain = np.where(present < m, np.maximum(gain, -1.0), gain)
    beta = float(gain.max())
    return SensitiveRisk(
        column=column, distance="ordered" if ordered else "equal", values=m,
        l=int(present.min()), l_entropy=int(entropy_l.min()), entropy_l=float(entropy_l.min()),
        alpha=float(q.max()),
        t=_ordered_emd(cls, val, q, p) if ordered else _equal_emd(cls, val, q, p),
        beta=beta, beta_enhanced=float(min(beta, -np.log(p.min()))),
        delta=float(np.abs(np.log(q / p[val])).max()))


def _equal_emd(cls: np.ndarray, val: np.ndarray, q: np.ndarray, p: np.ndarray) -> float:
    """Largest equal-distance EMD: ``1/2 * sum |q - p|``, values absent from a class adding p."""
    inside = np.bincount(cls, weights=np.abs(q - p[val]) - p[val])
    return float((0.5 * (inside + 1.0)).max())


def _ordered_emd(cls: np.ndarray, val: np.ndarray, q: np.ndarray, p: np.ndarray) -> float:
    """Largest ordered-distance EMD, classes taken in dense blocks of ``_DENSE_CELLS``."""
    m = len(p)
    if m < 2:
        return 0.0
    classes = int(cls.max()) + 1
    order = np.argsort(cls, kind="stable")
    cls, val, q = cls[order], val[order], q[order]
    starts = np.searchsorted(cls, np.arange(classes + 1))
    block = max(1, _DENSE_CELLS // m)
    worst = 0.0
    for first in range(0, classes, block):
        last = min(first + block, classes)
        lo, hi = starts[first], starts[last]
        dense = np.zeros((last - first, m))
        dense[cls[lo:hi] - first, val[lo:hi]] = q[lo:hi]
        dense -= p
        emd = np.abs(np.cumsum(dense, axis=1)).sum(axis=1) / (m - 1)
        worst = max(worst, float(emd.max()))
    return worst

