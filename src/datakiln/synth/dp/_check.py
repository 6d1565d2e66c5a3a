"""Load-time checks of a saved :class:`~datakiln.synth.dp.MSTSynthesizer` (a model file is data
from outside): the DP record against the parameters and the domain, the tree, and every
probability table's shape and values. Each failure is a :class:`ModelFormatError` naming the field."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.synth.dp.domain import Domain

__all__ = ["check_dp_record", "check_mst_state"]


def _number(value: Any, field: str) -> float:
    if value == "inf":
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ModelFormatError(f"state field 'dp.{field}' must be a number >= 0 or 'inf', got {value!r:.40}")
    return float(value)


def check_dp_record(dp: Any, epsilon: float, delta: float, rho: float, split_keys: set[str],
                    domain: Domain) -> None:
    """The ``dp`` record: method, budget equal to the parameters, split, ledger within budget, domain."""
    if not isinstance(dp, dict) or dp.get("method") != "zCDP":
        raise ModelFormatError("state field 'dp' must be the zCDP accounting record "
                               "({'method': 'zCDP', ...})")
    if _number(dp.get("epsilon"), "epsilon") != epsilon or dp.get("delta") != delta:
        raise ModelFormatError(f"state field 'dp.epsilon'/'dp.delta' ({dp.get('epsilon')!r}, "
                               f"{dp.get('delta')!r}) differ from the model's parameters ({epsilon!r}, "
                               f"{delta!r})")
    if not math.isclose(_number(dp.get("rho_budget"), "rho_budget"), rho, rel_tol=1e-9):
        raise ModelFormatError(f"state field 'dp.rho_budget' is not the zCDP budget of epsilon={epsilon:g}, "
                               f"delta={delta:g}")
    split = dp.get("split")
    if not isinstance(split, dict) or set(split) != split_keys or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
            for v in split.values()) or \
            abs(sum(split.values()) - 1) > 1e-9:
        raise ModelFormatError(f"state field 'dp.split' must give shares of {sorted(split_keys)} adding up "
                               f"to 1, got {split!r:.80}")
    ledger = dp.get("ledger")
    if not isinstance(ledger, list) or not all(isinstance(e, dict) and isinstance(e.get("what"), str)
                                               for e in ledger):
        raise ModelFormatError("state field 'dp.ledger' must list {'what', 'rho'} spends")
    total = math.fsum(_number(e.get("rho"), "ledger.rho") for e in ledger)
    if total > rho * (1 + 1e-9):
        raise ModelFormatError(f"state field 'dp.ledger' spends rho={total:.6g}, more than the budget "
                               f"{rho:.6g}")
    spent = dp.get("spent")
    if not isinstance(spent, dict) or not (math.isinf(total) and spent.get("rho") == "inf" or math.isclose(
            _number(spent.get("rho"), "spent.rho"), total, rel_tol=1e-9, abs_tol=1e-15)):
        raise ModelFormatError("state field 'dp.spent' does not match the ledger's total")
    try:
        saved = Domain.from_dict(dp.get("domain"), "the model file")
    except (InvalidArgumentError, ValueError) as exc:
        raise ModelFormatError(f"state field 'dp.domain': {exc}") from exc
    if saved.to_dict() != domain.to_dict():
        raise ModelFormatError("state field 'dp.domain' differs from the model's domain parameter")


def _probabilities(field: str, array: Any, shape: tuple[int, ...]) -> None:
    if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype.kind != "f":
        raise ModelFormatError(f"array {field!r} must be a float array of shape {shape}, got "
                               f"{getattr(array, 'dtype', type(array).__name__)} "
                               f"{getattr(array, 'shape', '')}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ModelFormatError(f"array {field!r} must hold finite probabilities >= 0")
    if not np.allclose(array.sum(axis=-1), 1, atol=1e-6):
        raise ModelFormatError(f"array {field!r}: each distribution must add up to 1")


def check_mst_state(state: dict[str, Any], arrays: dict[str, np.ndarray], sizes: list[int], epsilon: float,
                    delta: float, rho: float, domain: Domain) -> None:
    """Validate an MST model's state (see the module docstring)."""
    from datakiln.synth.dp.mst import SPLIT

    d = len(sizes)
    rows = state.get("rows")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ModelFormatError(f"state field 'rows' must be a whole number >= 1, got {rows!r:.40}")
    keys = set(SPLIT) if d > 1 else set(SPLIT)
    check_dp_record(state.get("dp"), epsilon, delta, rho, keys, domain)
    root, tree = state.get("root"), state.get("tree")
    if root != 0:
        raise ModelFormatError(f"state field 'root' must be 0 (the first column), got {root!r:.40}")
    if not isinstance(tree, list) or len(tree) != d - 1:
        raise ModelFormatError(f"state field 'tree' must list {d - 1} [parent, child] edges")
    reached = {0}
    for k, edge in enumerate(tree):
        ok = isinstance(edge, list) and len(edge) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < d for v in edge)
        if not ok or edge[0] not in reached or edge[1] in reached:
            raise ModelFormatError(f"state field 'tree[{k}]' must be [parent, child] with the parent already "
                                   f"reached from the root and a new child, got {edge!r:.40}")
        reached.add(edge[1])
        _probabilities(f"e{k}", arrays.get(f"e{k}"), (sizes[edge[0]], sizes[edge[1]]))
    for i, size in enumerate(sizes):
        _probabilities(f"m{i}", arrays.get(f"m{i}"), (size,))
    extra = set(arrays) - {f"m{i}" for i in range(d)} - {f"e{k}" for k in range(len(tree))}
    if extra:
        raise ModelFormatError(f"unexpected arrays {sorted(extra)} in an MST model file")
