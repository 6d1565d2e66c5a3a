"""A differentially private marginal synthesizer of the MST family (own implementation).

The model is a tree of 2-way marginals over discretised columns, after McKenna, Miklau &
Sheldon's MST (2021), written here from the description:

1. every column becomes cells on its **declared** domain (:mod:`datakiln.synth.dp.domain`):
   categories (plus the other bucket), numbers cut into at most ``bins`` intervals with the
   bounds as point cells, and one cell for missing values;
2. **one-way marginals** of all columns are measured with Gaussian noise (a third of ρ);
3. a **maximum spanning tree** is chosen with the exponential mechanism (a third of ρ,
   spread over the d − 1 picks): Kruskal's algorithm, each edge drawn among those joining
   two trees with probability ∝ exp(ε·score/2), the score being the L1 distance between the
   pair's true 2-way counts and the independence estimate from the noisy one-way marginals
   (sensitivity 1);
4. the chosen **2-way marginals** are measured with Gaussian noise (the last third);
5. noisy counts are made non-negative with the noisy total kept (post-processing), and
   rows are drawn by **ancestral sampling** from the root's one-way marginal down the tree
   (each child from its conditional given its parent; a parent value without mass falls
   back to the child's one-way marginal). A numeric cell becomes its point or a uniform
   value inside its interval.

Accounting is zCDP (Gaussian: ρ = 1/(2σ²) per measurement of sensitivity 1; exponential
mechanism: ε²/8), converted to (ε, δ); the split and the spends are recorded in the model
file, which is validated on load like every other field. Fitting makes one streaming pass.
Conditional sampling is not supported (the tree samples whole rows).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.dataset.dataset import as_dataset
from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.schema import refuse_nested
from datakiln.synth._sampling import _restore
from datakiln.synth.base import Synthesizer, register
from datakiln.synth.dp.accountant import ZCDPAccountant, check_budget, rho_from_eps
from datakiln.synth.dp.copula import json_number, vocabulary
from datakiln.synth.dp.domain import Domain, NumericCells, category_codes, load_domain, numeric_values
from datakiln.synth.dp.mechanisms import (
    exponential_mechanism,
    gaussian_mechanism,
    gaussian_sigma,
    nonnegative_counts,
)
from datakiln.units import parse_bytes

__all__ = ["SPLIT", "MSTSynthesizer"]

SPLIT = {"one_way": 1 / 3, "select": 1 / 3, "two_way": 1 / 3}
CHUNK_ROWS = 65_536


class _Columns:
    """Cells of every column: encoding data to cell codes and decoding codes to values."""

    def __init__(self, schema: pa.Schema, domain: Domain, bins: int) -> None:
        self.schema, self.domain = schema, domain
        self.names = list(schema.names)
        self.kinds = {n: domain.columns[n].kind for n in self.names}
        self.vocab: dict[str, list[Any]] = {}
        self.cells: dict[str, NumericCells] = {}
        for name in self.names:
            dtype = schema.field(name).type
            if self.kinds[name] == "categorical":
                self.vocab[name] = vocabulary(domain, name, dtype)[0]
            else:
                self.cells[name] = domain.columns[name].cells(dtype, bins)
        self.sizes = [(len(self.vocab[n]) if n in self.vocab else self.cells[n].size) + 1 for n in self.names]

    def encode(self, table: pa.Table) -> list[np.ndarray]:
        """Cell code of every row for every column (the last code of a column: missing)."""
        out = []
        for name, size in zip(self.names, self.sizes):
            if name in self.vocab:
                dtype = self.schema.field(name).type
                text = vocabulary(self.domain, name, dtype)[1] is not None
                code = category_codes(table[name], self.domain.columns[name], text)
                out.append(np.where(code < 0, size - 1, code))
            else:
                x = numeric_values(table[name])
                code = np.full(x.shape, size - 1, dtype=np.int64)
                present = ~np.isnan(x)
                code[present] = self.cells[name].assign(x[present])
                out.append(code)
        return out

    def decode(self, name: str, code: np.ndarray, rng: np.random.Generator) -> pa.Array:
        size = self.sizes[self.names.index(name)]
        missing = code == size - 1
        dtype = self.schema.field(name).type
        plain = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
        if name in self.vocab:
            values = pa.array(self.vocab[name]).cast(plain)
            return values.take(pa.array(np.where(missing, 0, code), mask=missing))
        x = self.cells[name].values(np.where(missing, 0, code), rng)
        return _restore(x, missing, plain)


@register
class MSTSynthesizer(Synthesizer):
    """Differentially private tree of 2-way marginals (MST family) for categorical-heavy tables.

    Parameters
    ----------
    epsilon : float
        Privacy budget ε (default 1.0); ``math.inf`` runs the same model without noise.
    delta : float
        δ of the (ε, δ) guarantee (default 1e-6; keep it well below 1/rows).
    domain : dict, path or :class:`~datakiln.synth.dp.Domain`
        Declared public domain of every column (required; never learned from the data).
    bins : int
        Most interval cells per numeric column (default 32; the domain's own ``bins`` caps it too).
    memory_budget : str or int
        Budget of the streaming pass (default ``"1GB"``).
    seed : int
        Seed of the noise and the tree selection (default 0).

    Examples
    --------
    >>> model = MSTSynthesizer(epsilon=1.0, domain="adult-domain.yaml").fit(table)  # doctest: +SKIP
    >>> model.sample(1000, seed=0)                                                 # doctest: +SKIP
    """

    _state_version = 1

    def __init__(self, *, epsilon: float = 1.0, delta: float = 1e-6, domain: Any = None, bins: int = 32,
                 memory_budget: str | int | None = "1GB", seed: int = 0) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.domain = domain
        self.bins = bins
        self.memory_budget = memory_budget
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments (the domain as its plain mapping, ε = inf as ``"inf"``)."""
        params = super().get_params()
        if getattr(self, "dp_", None):  # fitted: the domain it used, so the model file stands alone
            params["domain"] = self.dp_["domain"]
        elif isinstance(params["domain"], Domain):
            params["domain"] = params["domain"].to_dict()
        elif params["domain"] is not None and not isinstance(params["domain"], (dict, str)):
            params["domain"] = str(params["domain"])
        if isinstance(params["epsilon"], float) and math.isinf(params["epsilon"]):
            params["epsilon"] = "inf"
        return params

    # -- fitting ---------------------------------------------------------------------------------
    def _check(self) -> tuple[float, float, Domain]:
        epsilon, delta = check_budget(self.epsilon, self.delta)
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or not 1 <= self.bins <= 1024:
            raise InvalidArgumentError(f"bins must be a whole number in 1..1024, got {self.bins!r:.40}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise InvalidArgumentError(f"seed must be a whole number in 0..4294967295, got {self.seed!r:.40}")
        domain = load_domain(self.domain)
        domain.check(self.schema_)
        return epsilon, delta, domain

    def _count(self, dataset: Any, columns: _Columns, budget: int | None) -> tuple[list, dict]:
        d = len(columns.names)
        one = [np.zeros(s) for s in columns.sizes]
        sizes = columns.sizes
        two = {(i, j): np.zeros(sizes[i] * sizes[j]) for i in range(d) for j in range(i + 1, d)}
        for table in dataset._tables(memory_budget=budget):
            codes = columns.encode(table)
            for i, code in enumerate(codes):
                one[i] += np.bincount(code, minlength=columns.sizes[i])
            for (i, j), counts in two.items():
                counts += np.bincount(codes[i] * columns.sizes[j] + codes[j], minlength=counts.size)
            callback = getattr(self, "_on_progress", None)
            if callback is not None:
                callback(table.num_rows)
        return one, two

    def _select(self, one: list[np.ndarray], two: dict, rows: float, rho: float, accountant: ZCDPAccountant,
                rng: np.random.Generator) -> list[tuple[int, int]]:
        """Kruskal's tree, each edge drawn by the exponential mechanism on the L1 dependence score."""
        d = len(one)
        scores = {}
        for (i, j), counts in two.items():
            expected = rows * np.outer(one[i], one[j]).ravel()
            scores[(i, j)] = float(np.abs(counts - expected).sum())
        parent = list(range(d))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        per_pick = rho / max(d - 1, 1)
        epsilon = math.inf if math.isinf(per_pick) else math.sqrt(8 * per_pick)
        edges: list[tuple[int, int]] = []
        for _ in range(d - 1):
            candidates = [e for e in scores if root(e[0]) != root(e[1])]
            accountant.spend(per_pick, f"tree edge {len(edges) + 1} (exponential mechanism, "
                                       f"eps={epsilon:.4g})")
            weights = np.array([scores[e] for e in candidates])
            pick = candidates[exponential_mechanism(weights, epsilon, 1.0, rng)]
            edges.append(pick)
            parent[root(pick[0])] = root(pick[1])
        return edges

    def _fit(self, data: Any) -> None:
        dataset = as_dataset(data, what="fit")
        refuse_nested(dataset.arrow_schema, "the MST synthesizer")
        epsilon, delta, domain = self._check()
        columns = _Columns(self.schema_, domain, self.bins)
        accountant = ZCDPAccountant(epsilon, delta)
        rho = accountant.budget_rho
        d = len(columns.names)
        split = dict(SPLIT) if d > 1 else {"one_way": 1.0, "select": 0.0, "two_way": 0.0}
        rng = np.random.default_rng([self.seed, 2029])
        one, two = self._count(dataset, columns, parse_bytes(self.memory_budget))
        rho_one = rho * split["one_way"] / d
        noisy = []
        for name, counts in zip(columns.names, one):
            accountant.spend(rho_one, f"one-way marginal of {name!r} (sensitivity 1)")
            noisy.append(gaussian_mechanism(counts, 1.0, rho_one, rng))
        rows = float(np.mean([c.sum() for c in noisy]))
        if rows < 1:
            raise InvalidArgumentError(f"the noisy row count is {rows:.1f}: too few rows for "
                                       f"epsilon={epsilon:g}; fit on more rows or raise epsilon")
        marginals = [nonnegative_counts(c, rows) / rows for c in noisy]
        edges = self._select(marginals, two, rows, rho * split["select"], accountant, rng) if d > 1 else []
        rho_two = rho * split["two_way"] / max(len(edges), 1)
        measured = {}
        for i, j in edges:
            accountant.spend(rho_two, f"two-way marginal of {columns.names[i]!r} x {columns.names[j]!r}")
            counts = nonnegative_counts(gaussian_mechanism(two[(i, j)], 1.0, rho_two, rng), rows)
            measured[(i, j)] = counts.reshape(columns.sizes[i], columns.sizes[j])
        self._build(columns, marginals, measured, edges, gaussian_sigma(1.0, rho_two) if edges else 0.0)
        self.rows_ = max(int(round(rows)), 1)
        spent = accountant.spent()
        self.dp_ = {"method": "zCDP", "epsilon": json_number(epsilon), "delta": delta,
                    "rho_budget": json_number(rho), "split": split,
                    "ledger": [{"what": e["what"], "rho": json_number(e["rho"])} for e in accountant.ledger],
                    "spent": {"epsilon": json_number(spent["epsilon"]), "delta": delta,
                              "rho": json_number(spent["rho"])}, "domain": domain.to_dict()}

    def _build(self, columns: _Columns, marginals: list[np.ndarray], measured: dict, edges: list,
               sigma: float) -> None:
        """Root the tree at column 0 and turn the measured tables into conditionals (breadth first).

        Each parent value's row is shrunk towards the child's one-way marginal by the noise's
        size over that row (``sigma * sqrt(cells)`` pseudo-rows): a parent value with few rows
        follows the marginal rather than its noise (post-processing)."""
        self._columns = columns
        neighbours: dict[int, list[int]] = {i: [] for i in range(len(columns.names))}
        for i, j in edges:
            neighbours[i].append(j)
            neighbours[j].append(i)
        self.root_, self.tree_, self.conditionals_ = 0, [], []
        seen, queue = {0}, [0]
        while queue:
            parent = queue.pop(0)
            for child in sorted(neighbours[parent]):
                if child in seen:
                    continue
                key = (parent, child)
                table = measured[key] if key in measured else measured[(child, parent)].T
                prior = sigma * math.sqrt(table.shape[1])
                totals = table.sum(axis=1, keepdims=True) + prior
                smoothed = (table + prior * marginals[child]) / np.where(totals > 0, totals, 1)
                conditional = np.where(totals > 0, smoothed, marginals[child])
                self.tree_.append((parent, child))
                self.conditionals_.append(conditional)
                seen.add(child)
                queue.append(child)
        self.marginals_ = marginals

    # -- sampling --------------------------------------------------------------------------------
    def _sample(self, n: int, conditions: dict[str, Any], rng: np.random.Generator) -> pa.Table:
        if conditions:
            raise InvalidArgumentError(f"MSTSynthesizer samples whole rows from its tree; conditions "
                                       f"({sorted(conditions)}) are not supported: filter the sample instead")
        seed = int(rng.integers(0, 2**62))
        chunks = [self._chunk(min(CHUNK_ROWS, n - start), np.random.default_rng([seed, k]))
                  for k, start in enumerate(range(0, n, CHUNK_ROWS))]
        return pa.concat_tables(chunks) if chunks else self.schema_.empty_table()

    def _chunk(self, n: int, rng: np.random.Generator) -> pa.Table:
        columns = self._columns
        root = self.marginals_[self.root_][None, :]
        codes: dict[int, np.ndarray] = {self.root_: _draw(root, np.zeros(n, dtype=np.int64), rng)}
        for (parent, child), conditional in zip(self.tree_, self.conditionals_):
            codes[child] = _draw(conditional, codes[parent], rng)
        arrays = [columns.decode(name, codes[i], rng) for i, name in enumerate(columns.names)]
        return pa.table(arrays, names=columns.names)

    # -- model files -----------------------------------------------------------------------------
    def _to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state = {"rows": self.rows_, "root": self.root_, "tree": [list(e) for e in self.tree_],
                 "dp": self.dp_}
        arrays = {f"m{i}": m for i, m in enumerate(self.marginals_)}
        arrays.update({f"e{k}": c for k, c in enumerate(self.conditionals_)})
        return state, arrays

    def _from_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        from datakiln.synth.dp._check import check_mst_state

        try:
            epsilon, delta, domain = self._check()
        except (InvalidArgumentError, ValueError) as exc:
            raise ModelFormatError(f"model parameters: {exc}") from exc
        columns = _Columns(self.schema_, domain, self.bins)
        check_mst_state(state, arrays, columns.sizes, epsilon, delta, rho_from_eps(epsilon, delta), domain)
        self._columns, self.rows_, self.dp_ = columns, state["rows"], state["dp"]
        self.root_, self.tree_ = state["root"], [tuple(e) for e in state["tree"]]
        self.marginals_ = [arrays[f"m{i}"] for i in range(len(columns.names))]
        self.conditionals_ = [arrays[f"e{k}"] for k in range(len(self.tree_))]

    def summary(self) -> dict[str, Any]:
        """What the fit did, as plain data (``kiln synth fit`` prints it)."""
        columns = self._columns
        out: dict[str, dict[str, Any]] = {}
        for i, name in enumerate(columns.names):
            out[name] = {"role": columns.kinds[name], "missing_share": float(self.marginals_[i][-1]),
                         "cells": columns.sizes[i], "output": "modelled"}
        names = columns.names
        tree = [f"{names[p]} -> {names[c]}" for p, c in self.tree_]
        return {"model": type(self).__name__, "rows": self.rows_, "tree": tree, "dp": self.dp_,
                "warnings": [f"differentially private: epsilon={self.dp_['epsilon']}, "
                             f"delta={self.dp_['delta']:g} "
                             f"(zCDP; one-way / tree selection / two-way = thirds of the budget); row count "
                             f"noisy"], "columns": out, "small_training": False}


def _draw(conditional: np.ndarray, given: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One code per row from row ``given[r]`` of the conditional table (inverse CDF)."""
    cumulative = np.cumsum(conditional, axis=1)
    cumulative /= np.where(cumulative[:, -1:] > 0, cumulative[:, -1:], 1)
    u = rng.random(len(given))
    out = np.empty(len(given), dtype=np.int64)
    for value in np.unique(given):
        rows = given == value
        out[rows] = np.searchsorted(cumulative[value], u[rows], side="right")
    return np.minimum(out, conditional.shape[1] - 1)
