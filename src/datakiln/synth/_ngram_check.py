"""Checks of an n-gram text model's fields in a model file, before any is used.

A tampered or truncated file must fail with :class:`~datakiln.errors.ModelFormatError`
naming the column and field, never index out of range or sample from a broken table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datakiln.errors import ModelFormatError

__all__ = ["check_ngram_state"]


def _fail(column: str, field: str, why: str) -> ModelFormatError:
    return ModelFormatError(f"n-gram text model of column {column!r}: field {field!r} {why}; the model file "
                            f"is damaged or was edited, fit the model again")


def _array(arrays: dict[str, np.ndarray], name: str, column: str, kind: str) -> np.ndarray:
    value = arrays.get(name)
    if not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype.kind != kind:
        raise _fail(column, name, f"must be a one-dimensional array of kind {kind!r}")
    return value


def _scalars(state: dict[str, Any], column: str) -> None:
    n, min_count, min_class = state.get("n"), state.get("min_count"), state.get("min_class_texts")
    if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= 4:
        raise _fail(column, "n", f"must be a whole number in 2..4, got {n!r:.40}")
    for name, value in (("min_count", min_count), ("min_class_texts", min_class)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _fail(column, name, f"must be a whole number >= 1, got {value!r:.40}")
    for name in ("backoff", "null_share"):
        value = state.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
            raise _fail(column, name, f"must be a number in [0, 1], got {value!r:.40}")
    vocab, classes = state.get("vocab"), state.get("classes")
    for name, value in (("vocab", vocab), ("classes", classes)):
        if (not isinstance(value, list) or not all(isinstance(v, str) for v in value)
                or len(set(value)) != len(value)):
            raise _fail(column, name, "must be a list of distinct strings")
    if len(vocab) > 2**20 - 2:
        raise _fail(column, "vocab", f"holds {len(vocab):,} tokens, more than 2**20 - 2")


def _order(arrays: dict[str, np.ndarray], name: str, column: str, order: int, base: int) -> None:
    ctx = _array(arrays, f"{name}_ctx", column, "i")
    start = _array(arrays, f"{name}_start", column, "i")
    tok = _array(arrays, f"{name}_tok", column, "i")
    count = _array(arrays, f"{name}_count", column, "i")
    if ctx.size == 0 or np.any(np.diff(ctx) <= 0) or ctx[0] < 0 or ctx[-1] >= base ** (order - 1):
        raise _fail(column, f"{name}_ctx", f"must be non-empty, increasing keys below {base}**{order - 1}")
    if start.size != ctx.size + 1 or start[0] != 0 or np.any(np.diff(start) <= 0) or start[-1] != tok.size:
        raise _fail(column, f"{name}_start", "must rise strictly from 0 to the number of successors, one "
                                             "more entry than contexts")
    if count.size != tok.size or np.any(count < 1):
        raise _fail(column, f"{name}_count", "must hold one count >= 1 per successor token")
    if tok.size and (tok.min() < 1 or tok.max() >= base):  # 0 is the start marker, never emitted
        raise _fail(column, f"{name}_tok", f"must hold token ids in 1..{base - 1}")


def check_ngram_state(state: Any, arrays: dict[str, np.ndarray], prefix: str, column: str) -> None:
    """Raise :class:`ModelFormatError` unless ``state``/``arrays`` form a valid n-gram model."""
    if not isinstance(state, dict):
        raise _fail(column, "ngram", f"must be a mapping, got {type(state).__name__}")
    _scalars(state, column)
    base = len(state["vocab"]) + 2
    hashes = _array(arrays, f"{prefix}_hashes", column, "u")
    if hashes.dtype != np.uint64 or np.any(hashes[1:] <= hashes[:-1]):  # (np.diff wraps on uint64)
        raise _fail(column, f"{prefix}_hashes", "must be strictly increasing uint64 text hashes")
    for j in range(len(state["classes"]) + 1):
        lengths = _array(arrays, f"{prefix}_m{j}_lengths", column, "i")
        if lengths.size == 0 or np.any(lengths < 0) or lengths.sum() < 1 or lengths.size > 1_000_000:
            raise _fail(column, f"{prefix}_m{j}_lengths", "must be a histogram of text lengths with counts "
                                                          ">= 0 and at least one text")
        for order in range(1, state["n"] + 1):
            _order(arrays, f"{prefix}_m{j}_o{order}", column, order, base)
