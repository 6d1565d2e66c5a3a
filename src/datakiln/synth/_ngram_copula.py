"""The copula's side of ``text="ngram"``: one :class:`~datakiln.synth._ngram.NgramText` per
free-text column, fitted in the copula's streaming first pass, optionally conditioned on a
categorical column (``text_condition``), stored in the model file as JSON plus arrays.

The text columns are not part of the copula itself (as with ``text="drop"``); each sampled
row's text is drawn from the model of that row's sampled class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.synth._ngram import NgramText

__all__ = ["batch_texts", "check_condition", "fill_texts", "new_models", "ngram_from_state", "ngram_state"]


def _text_columns(model: Any) -> list[str]:
    return [n for n, r in model.roles_.items() if r == "text"]


def check_condition(model: Any) -> None:
    """Refuse a ``text_condition`` that is not a categorical column, or ngram text under DP."""
    condition = model.text_condition
    if condition is None:
        return
    if model.text != "ngram":
        raise InvalidArgumentError(f"text_condition={condition!r} needs text='ngram', got "
                                   f"text={model.text!r}")
    role = model.roles_.get(condition) if isinstance(condition, str) else None
    if role != "categorical":
        raise InvalidArgumentError(f"text_condition must name a categorical column (such as a label), got "
                                   f"{condition!r} (role {role})")


def new_models(model: Any) -> dict[str, NgramText]:
    """Empty n-gram models, one per text column (none unless ``text="ngram"``)."""
    if model.text != "ngram":
        return {}
    if model.epsilon is not None:
        raise InvalidArgumentError("text='ngram' is not differentially private; use text='drop' with epsilon")
    return {name: NgramText() for name in _text_columns(model)}


def batch_texts(model: Any, table: pa.Table) -> dict[str, tuple[list[Any], list[Any] | None]]:
    """(texts, condition values) of one raw batch per text column (empty unless ``text="ngram"``)."""
    if model.text != "ngram":
        return {}
    classes = table[model.text_condition].to_pylist() if model.text_condition else None
    return {name: (table[name].to_pylist(), classes) for name in _text_columns(model)}


def fill_texts(model: Any, columns: dict[str, pa.Array], n: int, rng: np.random.Generator) -> None:
    """Add each n-gram text column to ``columns`` (a sampled chunk of ``n`` rows)."""
    for name, ngram in getattr(model, "ngram_", {}).items():
        condition = model.text_condition
        classes = columns[condition].to_pylist() if condition else None
        columns[name] = ngram.sample(n, rng, classes, model.schema_.field(name).type)


def ngram_state(models: dict[str, NgramText], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """JSON fields of the models (their arrays are added to ``arrays`` as ``ng<i>_...``)."""
    state = {}
    for i, (name, ngram) in enumerate(models.items()):
        fields, more = ngram.to_state(f"ng{i}")
        state[name] = fields
        arrays.update(more)
    return state


def ngram_from_state(model: Any, state: dict[str, Any],
                     arrays: dict[str, np.ndarray]) -> dict[str, NgramText]:
    """The models back from a model file, checked: one per text column when ``text="ngram"``."""
    found = state.get("ngram", {})
    text = _text_columns(model)
    if model.text != "ngram":
        if found:
            raise ModelFormatError(f"state field 'ngram' is present but the model parameter text is "
                                   f"{model.text!r}; the model file was edited, fit the model again")
        return {}
    if not isinstance(found, dict) or list(found) != text:
        raise ModelFormatError(f"state field 'ngram' must hold one n-gram model per text column {text}, got "
                               f"{list(found) if isinstance(found, dict) else found!r:.80}")
    condition = model.text_condition
    if condition is not None and (not isinstance(condition, str)
                                  or model.roles_.get(condition) != "categorical"):
        raise ModelFormatError(f"model parameter text_condition must name a categorical column, got "
                               f"{condition!r:.40}")
    return {name: NgramText.from_state(found[name], arrays, f"ng{i}", name) for i, name in enumerate(text)}
