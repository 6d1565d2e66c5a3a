"""The balancing methods: imbalanced-learn's samplers by name, plus ``synth`` and ``auto``.

imbalanced-learn does the resampling (we do not rewrite what it does well); this table
says which class implements a name, what kind of change it makes, and whether it can work
one class at a time (``per_class``: new rows need only the neighbours inside their own
class, so a table larger than memory streams) or needs every row at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datakiln.errors import InvalidArgumentError

__all__ = ["METHODS", "Method", "method_named", "sampler"]


@dataclass(frozen=True)
class Method:
    """One balancing method: its imbalanced-learn class, kind and streaming ability."""

    name: str
    module: str
    cls: str
    kind: str  # "over-sampling", "under-sampling", "clean-sampling" (imbalanced-learn's words)
    per_class: bool = False
    takes_k: bool = False


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("random_over", "imblearn.over_sampling", "RandomOverSampler", "over-sampling", per_class=True),
    Method("smote", "imblearn.over_sampling", "SMOTE", "over-sampling", per_class=True, takes_k=True),
    Method("smotenc", "imblearn.over_sampling", "SMOTENC", "over-sampling", per_class=True, takes_k=True),
    Method("smoten", "imblearn.over_sampling", "SMOTEN", "over-sampling", per_class=True, takes_k=True),
    Method("borderline_smote", "imblearn.over_sampling", "BorderlineSMOTE", "over-sampling", takes_k=True),
    Method("adasyn", "imblearn.over_sampling", "ADASYN", "over-sampling"),
    Method("random_under", "imblearn.under_sampling", "RandomUnderSampler", "under-sampling", per_class=True),
    Method("tomek", "imblearn.under_sampling", "TomekLinks", "clean-sampling"),
    Method("near_miss", "imblearn.under_sampling", "NearMiss", "under-sampling"),
    Method("enn", "imblearn.under_sampling", "EditedNearestNeighbours", "clean-sampling"),
    Method("smote_tomek", "imblearn.combine", "SMOTETomek", "over-sampling"),
    Method("smote_enn", "imblearn.combine", "SMOTEENN", "over-sampling"),
]}
SPECIAL = ("synth", "auto", "none")


def method_named(name: str) -> Method | None:
    """The method called ``name`` (``None`` for synth/auto/none); a clear error otherwise."""
    key = name.lower().replace("-", "_")
    if key in SPECIAL:
        return None
    if key not in METHODS:
        raise InvalidArgumentError(f"unknown balancing method {name!r}; choose one of "
                                   f"{sorted(METHODS) + list(SPECIAL)}")
    return METHODS[key]


def sampler(method: Method, *, sampling_strategy: Any, seed: int, categorical: list[int] | None = None,
            k_neighbors: int | None = None, **options: Any) -> Any:
    """An imbalanced-learn sampler for ``method`` (SMOTENC gets the categorical indices)."""
    import importlib

    cls = getattr(importlib.import_module(method.module), method.cls)
    kwargs: dict[str, Any] = dict(options)
    if method.kind != "clean-sampling":
        kwargs["sampling_strategy"] = sampling_strategy
    if method.name not in ("tomek", "enn", "near_miss"):
        kwargs["random_state"] = seed
    if method.name == "smotenc":
        kwargs["categorical_features"] = categorical
    if k_neighbors is not None and method.takes_k:
        kwargs["k_neighbors"] = k_neighbors
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InvalidArgumentError(f"{method.cls} does not take these options {sorted(options)}: "
                                   f"{exc}") from exc
