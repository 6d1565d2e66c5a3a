"""Two choices the copula makes on its row sample: category order and the ``by`` columns.

*Category order*: a category's place on the normal scale is arbitrary, and a Gaussian
copula only sees monotone relations; so each categorical column's categories are sorted
by the first principal direction of their mean normal scores of the other columns
(weighted by frequency), a few rounds in turn (a form of optimal scaling).

*By columns*: the categorical column whose values most change the other columns (mean
Cramér's V with each other column, numbers cut into 10 quantile bins) gets one copula per
value; a second column is added when it still adds association within those groups and
the combinations stay within ``max_components``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datakiln.errors import InvalidArgumentError
from datakiln.synth._component import Component, ndtri

__all__ = ["choose_by", "order_categories"]

SELECTION_ROWS = 50_000
MIN_ASSOCIATION = 0.1


def order_categories(component: Component, codes: dict[str, np.ndarray], numbers: dict[str, np.ndarray],
                     rng: np.random.Generator, rounds: int = 3) -> None:
    """Reorder ``component``'s categories in place (see the module docstring)."""
    names = [n for n in component.columns if component.kinds[n] == "categorical"
             and len(component.categories[n]["index"]) > 2]
    if not names or len(component.columns) < 2:
        return
    scores = ndtri(component.uniform(codes, numbers, rng, jitter=False))
    for _ in range(rounds):
        for name in names:
            j = component.columns.index(name)
            code = codes[name]
            known = code >= 0
            others = np.delete(scores[known], j, axis=1)
            size = int(code.max()) + 1
            counts = np.bincount(code[known], minlength=size).astype(float)
            sums = np.stack([np.bincount(code[known], weights=others[:, i], minlength=size)
                             for i in range(others.shape[1])], axis=1)
            present = np.asarray(component.categories[name]["index"], dtype=np.int64)
            present = present[counts[present] > 0]
            means = sums[present] / counts[present, None]
            weights = counts[present] / counts[present].sum()
            centred = means - weights @ means
            _, _, directions = np.linalg.svd(centred * np.sqrt(weights)[:, None], full_matrices=False)
            new_order = present[np.argsort(centred @ directions[0], kind="stable")]
            share = dict(zip(component.categories[name]["index"], component.categories[name]["shares"]))
            component.categories[name] = {"index": new_order.tolist(),
                                          "shares": [share[i] for i in new_order.tolist()]}
            component._cache.clear()
            scores[:, j] = ndtri(component.uniform(codes, numbers, rng, jitter=False, names=[name])[:, 0])


def _discrete(codes: dict[str, np.ndarray], numbers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every column as small non-negative codes: categories (top 50 + other), 10 quantile bins."""
    out = {}
    for name, code in codes.items():
        out[name] = np.where(code < 0, 51, np.minimum(code, 50))
    for name, x in numbers.items():
        present = x[~np.isnan(x)]
        edges = np.unique(np.quantile(present, np.linspace(0, 1, 11)[1:-1])) if present.size else np.zeros(0)
        out[name] = np.where(np.isnan(x), len(edges) + 1, np.searchsorted(edges, x, side="right"))
    return out


def _within_group_v(groups: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Cramér's V of ``a`` and ``b`` inside each group, averaged with the groups' sizes as weights."""
    g_size, a_size, b_size = int(groups.max()) + 1, int(a.max()) + 1, int(b.max()) + 1
    tables = np.bincount((groups * a_size + a) * b_size + b,
                         minlength=g_size * a_size * b_size).reshape(g_size, a_size, b_size).astype(float)
    total = 0.0
    for table in tables:
        table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
        if min(table.shape, default=0) < 2:
            continue
        n = table.sum()
        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
        chi2 = ((table - expected) ** 2 / expected).sum()
        total += n / len(groups) * float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))
    return total


def _score(candidate: str, groups: np.ndarray, discrete: dict[str, np.ndarray], skip: set[str]) -> float:
    """Mean over the other columns of the within-group Cramér's V with ``candidate``."""
    values = [_within_group_v(groups, discrete[candidate], codes) for other, codes in discrete.items()
              if other not in skip and other != candidate]
    return float(np.mean(values)) if values else 0.0


def choose_by(by: Any, codes: dict[str, np.ndarray], numbers: dict[str, np.ndarray], roles: dict[str, str],
              sizes: dict[str, int], max_components: int, depth: int = 2) -> list[str]:
    """The ``by`` columns: as given (checked) or chosen on the sample for ``"auto"``.

    ``sizes`` holds the number of codes of each categorical column (kept values and pool).
    """
    if by is None:
        return []
    if by != "auto":
        names = [by] if isinstance(by, str) else list(by)
        bad = [n for n in names if roles.get(n) != "categorical"]
        if bad:
            raise InvalidArgumentError(f"by columns must be categorical columns of the data; {bad} are not "
                                       f"(categorical: {[n for n, r in roles.items() if r == 'categorical']})"
                                       )
        combinations = int(np.prod([sizes[n] + 1 for n in names]))
        if combinations > max_components:
            raise InvalidArgumentError(f"by={names} makes {combinations} combinations, more than "
                                       f"max_components={max_components}; raise it or choose fewer columns")
        return names
    discrete = _discrete({n: c[:SELECTION_ROWS] for n, c in codes.items()},
                         {n: x[:SELECTION_ROWS] for n, x in numbers.items()})
    rows = len(next(iter(discrete.values()))) if discrete else 0
    chosen: list[str] = []
    groups = np.zeros(rows, dtype=np.int64)
    for _ in range(depth):
        used = int(np.prod([sizes[n] + 1 for n in chosen])) if chosen else 1
        candidates = [n for n in codes if n not in chosen and 2 <= sizes[n]
                      and used * (sizes[n] + 1) <= max_components]
        if not candidates:
            break
        scores = {n: _score(n, groups, discrete, set(chosen)) for n in candidates}
        best = max(scores, key=lambda n: scores[n])
        if scores[best] < MIN_ASSOCIATION:
            break
        chosen.append(best)
        groups = np.unique(groups * 64 + discrete[best], return_inverse=True)[1].ravel()
    return chosen
