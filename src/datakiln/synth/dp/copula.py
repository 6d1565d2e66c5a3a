"""Differentially private fitting of :class:`~datakiln.synth.GaussianCopula` (``epsilon=...``).

Accounting: zCDP (:mod:`datakiln.synth.dp.accountant`), the budget (ε, δ) converted to ρ
and split, as recorded in the model file under ``dp``:

- **marginals, half of ρ** (:data:`SPLIT`): one histogram per column on its declared cells
  (:mod:`datakiln.synth.dp.domain`) plus a missing cell; a row adds 1 to one cell of each
  histogram (L2 sensitivity 1 each), so every column gets ρ/2/d and Gaussian noise of
  σ = 1/sqrt(2·ρ/2/d). The noisy counts are made non-negative with their mean total kept
  (:func:`~datakiln.synth.dp.mechanisms.nonnegative_counts`); the row count is the mean of
  the noisy histogram totals. Numbers get a piecewise-uniform quantile function over their
  cells; categories keep the declared order on the normal scale (list related categories in
  a meaningful order, e.g. education levels ascending).
- **correlation, the other half**: rows are mapped to normal scores through the *noisy*
  marginals (post-processing), each row's score vector clipped to L2 norm
  ``C = sqrt(2k)`` for k columns, and the off-diagonal sums of ``z zᵀ`` released with
  Gaussian noise (L2 sensitivity C²/√2). Divided by the noisy row count, with a unit
  diagonal, the matrix is projected to the nearest valid correlation matrix.

Mixture components are **switched off** under DP: one copula (``by`` must be "auto" or
None); each component would need its own marginals and correlation, splitting a small
budget further. Constraints are refused. Identifier, PII and free-text treatment does not
apply: every column is modelled from its declared domain (a PII column with a declared
category list samples those public values). NaN and ±inf count as missing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from datakiln.dataset.dataset import as_dataset
from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.schema import refuse_nested
from datakiln.synth._component import Component, ndtri, nearest_correlation
from datakiln.synth.dp.accountant import ZCDPAccountant, check_budget, rho_from_eps
from datakiln.synth.dp.domain import OTHER, Domain, load_domain, numeric_values
from datakiln.synth.dp.mechanisms import gaussian_mechanism, gaussian_sigma, nonnegative_counts
from datakiln.units import parse_bytes

__all__ = ["SPLIT", "check_dp_state", "fit_dp", "json_number"]

SPLIT = {"marginals": 0.5, "correlation": 0.5}


def json_number(value: float) -> float | str:
    """A float for JSON: ``"inf"`` for infinity (model files hold finite numbers only)."""
    return "inf" if math.isinf(value) else float(value)


def _text_typed(dtype: pa.DataType) -> bool:
    plain = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
    return pa.types.is_string(plain) or pa.types.is_large_string(plain)


def vocabulary(domain: Domain, name: str, dtype: pa.DataType) -> tuple[list[Any], str | None]:
    """(kept values: the declared categories plus the other bucket, the other value or None)."""
    declared = domain.columns[name]
    values = list(declared.categories)
    if declared.other and _text_typed(dtype):
        other, number = OTHER, 2
        while other in values:
            other, number = f"(other {number})", number + 1
        return [*values, other], other
    return values, None


def _check_settings(model: Any) -> tuple[float, float, Domain]:
    epsilon, delta = check_budget(model.epsilon, model.delta)
    if model.by not in ("auto", None):
        raise InvalidArgumentError(f"by={model.by!r}: mixture components are switched off under "
                                   f"differential privacy (one copula, so the budget is not split per "
                                   f"component); leave by at 'auto' or None")
    if model.constraints:
        raise InvalidArgumentError("constraints are not supported with epsilon= (a DP copula); declare "
                                   "the bounds in the domain instead, or fit without DP")
    domain = load_domain(model.domain)
    domain.check(model.schema_)
    return epsilon, delta, domain


def _setup(model: Any, domain: Domain) -> None:
    """Roles, vocabularies and bookkeeping fields of the copula, from the domain alone."""
    schema = model.schema_
    model.roles_ = {n: domain.columns[n].kind for n in schema.names}
    model.pii_, model.last_id_, model.avoid_, model.constraints_, model.gaps_ = {}, {}, {}, [], {}
    model.vocab_, model.pool_, model.withheld_ = {}, {}, {}
    for name, role in model.roles_.items():
        if role == "categorical":
            kept, other = vocabulary(domain, name, schema.field(name).type)
            model.vocab_[name] = kept
            model.pool_[name] = {"values": [], "counts": []}
            model.withheld_[name] = {"values": 0, "rows": 0, "other": other}
    model._arrays()
    model.modelled_ = list(schema.names)
    model.order_ = {n: list(range(len(v))) for n, v in model.vocab_.items()}
    model.by_ = []


Arrays = dict[str, np.ndarray]


def _encode(model: Any, table: pa.Table, domain: Domain) -> tuple[Arrays, Arrays]:
    codes, numbers = {}, {}
    for name in model.modelled_:
        if model.roles_[name] == "categorical":
            codes[name] = model._categories[name].encode(table[name])
        else:
            declared = domain.columns[name]
            numbers[name] = np.clip(numeric_values(table[name]), declared.low, declared.high)
    return codes, numbers


def _histograms(model: Any, dataset: Any, domain: Domain, budget: int | None) -> tuple[Arrays, dict]:
    cells = {n: domain.columns[n].cells(model.schema_.field(n).type) for n, r in model.roles_.items()
             if r == "numeric"}
    sizes = {n: (len(model.vocab_[n]) if r == "categorical" else cells[n].size) + 1
             for n, r in model.roles_.items()}
    hist = {n: np.zeros(size) for n, size in sizes.items()}
    for table in dataset._tables(memory_budget=budget):
        codes, numbers = _encode(model, table, domain)
        for name, code in codes.items():
            hist[name] += np.bincount(np.where(code < 0, sizes[name] - 1, code), minlength=sizes[name])
        for name, x in numbers.items():
            cell = np.full(x.shape, sizes[name] - 1, dtype=np.int64)
            present = ~np.isnan(x)
            cell[present] = cells[name].assign(x[present])
            hist[name] += np.bincount(cell, minlength=sizes[name])
        model._progress(table.num_rows)
    return hist, cells


def _marginals(model: Any, noisy: dict[str, np.ndarray], cells: dict, rows: float) -> Component:
    kinds = {n: model.roles_[n] for n in model.modelled_}
    component = Component(list(model.modelled_), kinds)
    for name, counts in noisy.items():
        counts = nonnegative_counts(counts, rows)
        total = counts.sum()
        component.null_share[name] = float(counts[-1] / total) if total > 0 else 0.0
        present = counts[:-1]
        if kinds[name] == "categorical":
            index = [i for i in range(len(present)) if present[i] > 0]
            if not index:
                component.null_share[name] = 1.0
            shares = present[index] / present[index].sum() if index else np.zeros(0)
            component.categories[name] = {"index": index, "shares": shares.tolist()}
        else:
            component.quantiles[name] = cells[name].quantiles(present, int(model.grid))
    return component


def _correlation(model: Any, dataset: Any, domain: Domain, component: Component, rho: float, rows: float,
                 rng: np.random.Generator, budget: int | None) -> np.ndarray:
    k = len(model.modelled_)
    if k < 2:
        return np.eye(k)
    clip = math.sqrt(2 * k)
    outer = np.zeros((k, k))
    with threadpool_limits(1):
        for index, table in enumerate(dataset.select(model.modelled_)._tables(memory_budget=budget)):
            codes, numbers = _encode(model, table, domain)
            z = ndtri(component.uniform(codes, numbers, np.random.default_rng([model.seed, 11, index])))
            norms = np.sqrt((z * z).sum(axis=1))
            z *= np.minimum(1.0, clip / np.maximum(norms, 1e-12))[:, None]
            outer += z.T @ z
            model._progress(table.num_rows)
    upper = np.triu_indices(k, 1)
    released = gaussian_mechanism(outer[upper], clip * clip / math.sqrt(2), rho, rng)
    matrix = np.eye(k)
    matrix[upper] = np.clip(released / max(rows, 1.0), -1, 1)
    matrix = matrix + np.triu(matrix, 1).T
    return nearest_correlation(matrix)


def fit_dp(model: Any, data: Any) -> None:
    """Fit ``model`` (a GaussianCopula with ``epsilon`` set) under zCDP; see the module docstring."""
    dataset = as_dataset(data, what="fit")
    refuse_nested(dataset.arrow_schema, "the DP Gaussian copula")
    epsilon, delta, domain = _check_settings(model)
    budget = parse_bytes(model.memory_budget)
    accountant = ZCDPAccountant(epsilon, delta)
    rho = accountant.budget_rho
    _setup(model, domain)
    split = dict(SPLIT) if len(model.modelled_) > 1 else {"marginals": 1.0, "correlation": 0.0}
    rng = np.random.default_rng([model.seed, 2027])
    hist, cells = _histograms(model, dataset, domain, budget)
    per_column = rho * split["marginals"] / len(model.modelled_)
    noisy = {}
    for name, counts in hist.items():
        accountant.spend(per_column, f"histogram of {name!r} (sensitivity 1)")
        noisy[name] = gaussian_mechanism(counts, 1.0, per_column, rng)
    rows = float(np.mean([c.sum() for c in noisy.values()]))
    if rows < 1:
        raise InvalidArgumentError(f"the noisy row count is {rows:.1f}: too few rows for "
                                   f"epsilon={epsilon:g}; fit on more rows or raise epsilon")
    component = _marginals(model, noisy, cells, rows)
    if split["correlation"] > 0:
        rho_corr = rho * split["correlation"]
        accountant.spend(rho_corr, "correlation of normal scores (clipped, sensitivity C^2/sqrt(2))")
        component.correlation = _correlation(model, dataset, domain, component, rho_corr, rows, rng, budget)
    else:
        component.correlation = np.eye(len(model.modelled_))
    component.weight = 1.0
    component._cache.clear()
    model.components_ = [component]
    model.rows_ = max(int(round(rows)), 1)
    spent = accountant.spent()
    model.dp_ = {"method": "zCDP", "epsilon": json_number(epsilon), "delta": delta,
                 "rho_budget": json_number(rho), "split": split,
                 "ledger": [{"what": e["what"], "rho": json_number(e["rho"])} for e in accountant.ledger],
                 "spent": {"epsilon": json_number(spent["epsilon"]), "delta": delta,
                           "rho": json_number(spent["rho"])},
                 "marginal_sigma": json_number(gaussian_sigma(1.0, per_column)) if per_column else None,
                 "clip_norm": math.sqrt(2 * len(model.modelled_)), "domain": domain.to_dict(),
                 "mixture": "off (one copula under DP)", "rows": "noisy count"}


# -- model files ------------------------------------------------------------------------------------------
def check_dp_state(model: Any, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Validate a DP copula's ``dp`` record against its parameters, domain and fitted state.

    Raises :class:`ModelFormatError` naming the field; returns the record ({} without DP).
    """
    from datakiln.synth.dp._check import check_dp_record

    dp = state.get("dp")
    if model.epsilon is None:
        if dp is not None:
            raise ModelFormatError("state field 'dp' is present but the model parameter 'epsilon' is None")
        return {}
    if not isinstance(dp, dict):
        raise ModelFormatError("the model parameter 'epsilon' is set but state field 'dp' (the privacy "
                               "accounting) is missing; the file was edited")
    try:
        epsilon, delta = check_budget(model.epsilon, model.delta)
        domain = Domain.from_dict(dp.get("domain"), "the model file")
        domain.check(model.schema_)
    except (InvalidArgumentError, ValueError) as exc:
        raise ModelFormatError(f"DP parameters or state field 'dp.domain': {exc}") from exc
    check_dp_record(dp, epsilon, delta, rho_from_eps(epsilon, delta), set(SPLIT), domain)
    _check_against_domain(model, state, arrays, domain)
    return dp


def _check_against_domain(model: Any, state: dict[str, Any], arrays: dict[str, np.ndarray],
                          domain: Domain) -> None:
    """Roles, vocabularies and quantiles must be what the declared domain allows (one component)."""
    roles = state.get("roles", {})
    for name, declared in domain.columns.items():
        if roles.get(name) != declared.kind:
            raise ModelFormatError(f"state field 'roles.{name}' ({roles.get(name)!r}) contradicts the DP "
                                   f"domain ({declared.kind})")
        if declared.kind == "categorical":
            kept, _ = vocabulary(domain, name, model.schema_.field(name).type)
            saved = state.get("vocab", {}).get(name)
            if not isinstance(saved, list) or [repr(v) for v in saved] != [
                    repr(v) for v in pa.array(kept).cast(model.schema_.field(name).type).to_pylist()]:
                raise ModelFormatError(f"state field 'vocab.{name}' differs from the DP domain's categories")
    if state.get("by") != [] or len(state.get("components", [])) != 1:
        raise ModelFormatError("a DP copula has one component and no by columns (state fields 'by', "
                               "'components')")
    columns = state["components"][0].get("columns", [])
    for j, name in enumerate(columns):
        declared = domain.columns.get(name)
        q = arrays.get(f"c0.q{j}")
        if declared is not None and declared.kind == "numeric" and isinstance(q, np.ndarray) and q.size and (
                float(q.min()) < declared.low or float(q.max()) > declared.high):
            raise ModelFormatError(f"array 'c0.q{j}' (the quantiles of {name!r}) leaves the DP domain "
                                   f"[{declared.low:g}, {declared.high:g}]")


