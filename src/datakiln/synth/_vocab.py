"""Category vocabularies of the copula: kept categories, one pooled category, withheld rare values.

A categorical column's distinct values fall into three groups, decided on the exact counts
of the first pass:

- values seen fewer than ``min_category_count`` times are *withheld*: a sampled row shows
  one explicit other value instead (``"(other)"`` for text-typed columns; a null for other
  types, which have no room for one; both stated in the fit summary). Rare values are
  often the identifying ones, so a synthesizer should not replay them;
- of the rest, the ``max_categories`` most frequent are *kept*, one copula category each;
- the remaining ones form the *pool*: one copula category whose sampled rows take a pooled
  value drawn with its real frequency.

No value is ever turned into a null by the cut: before this module, values beyond
``max_categories`` came out as NULL (a 40-value column with ``max_categories=5`` gave 87%
nulls).

Codes: ``0 .. len(kept) - 1`` are the kept values (the explicit other value last among
them), ``len(kept)`` the pool when there is one, ``-1`` null.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import ModelFormatError

__all__ = ["OTHER", "Categories", "build_vocabulary", "check_vocabulary_state"]

OTHER = "(other)"


def _other_value(seen: dict[Any, int]) -> str:
    """``"(other)"``, or a variant no training value uses."""
    value, number = OTHER, 2
    while value in seen:
        value, number = f"(other {number})", number + 1
    return value


def build_vocabulary(seen: dict[Any, int], max_categories: int, min_count: int,
                     text_typed: bool) -> tuple[list[Any], dict[str, list[Any]], dict[str, Any]]:
    """(kept values, pool ``{"values", "counts"}``, withheld ``{"values", "rows", "other"}``).

    ``seen`` maps every distinct non-null value to its exact count.
    """
    ranked = sorted(seen.items(), key=lambda kv: (-kv[1], str(kv[0])))
    frequent = [(v, c) for v, c in ranked if c >= min_count]
    rare = [(v, c) for v, c in ranked if c < min_count]
    kept = [v for v, _ in frequent[:max_categories]]
    pooled = frequent[max_categories:]
    withheld: dict[str, Any] = {"values": len(rare), "rows": int(sum(c for _, c in rare)), "other": None}
    if rare and text_typed:
        withheld["other"] = _other_value(seen)
        kept.append(withheld["other"])
    pool = {"values": [v for v, _ in pooled], "counts": [int(c) for _, c in pooled]}
    return kept, pool, withheld


@dataclass
class Categories:
    """Encoder/decoder of one categorical column between values and copula codes."""

    kept: pa.Array
    pool: pa.Array
    pool_counts: np.ndarray
    other: Any = None
    _cumulative: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        total = float(self.pool_counts.sum()) if self.pool_counts.size else 1.0
        self._cumulative = np.cumsum(self.pool_counts) / total

    @property
    def size(self) -> int:
        """Number of codes (kept values plus the pool)."""
        return len(self.kept) + (1 if len(self.pool) else 0)

    @property
    def pool_code(self) -> int:
        """The pool's code (-1 when the column has no pool)."""
        return len(self.kept) if len(self.pool) else -1

    def encode(self, column: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Code of every value (-1: null, or a withheld value of a column without an other value)."""
        plain = column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
        index = pc.index_in(plain, value_set=self.kept.cast(plain.type)).to_numpy(zero_copy_only=False)
        codes = np.nan_to_num(np.asarray(index, dtype=np.float64), nan=-1).astype(np.int64)
        outside = (codes < 0) & np.asarray(pc.is_valid(plain).to_numpy(zero_copy_only=False), dtype=bool)
        if not outside.any():
            return codes
        fallback = -1 if self.other is None else self.kept.to_pylist().index(self.other)
        if len(self.pool):
            pooled = np.asarray(pc.is_in(plain, value_set=self.pool.cast(plain.type))
                                .to_numpy(zero_copy_only=False), dtype=bool)
            codes[outside & pooled] = self.pool_code
            outside &= ~pooled
        codes[outside] = fallback
        return codes

    def decode(self, codes: np.ndarray, null: np.ndarray, rng: np.random.Generator) -> pa.Array:
        """Values of ``codes`` (masked by ``null``); pooled rows draw a value by its frequency."""
        if not len(self.pool):
            return self.kept.take(pa.array(np.maximum(codes, 0), mask=null))
        values = pa.concat_arrays([self.kept, self.pool.cast(self.kept.type)])
        index = np.maximum(codes, 0)
        in_pool = (codes == self.pool_code) & ~null
        if in_pool.any():
            draw = np.searchsorted(self._cumulative, rng.random(int(in_pool.sum())), side="right")
            index[in_pool] = len(self.kept) + np.minimum(draw, len(self.pool) - 1)
        return values.take(pa.array(index, mask=null))


def check_vocabulary_state(name: str, kept: Any, pool: Any, withheld: Any) -> None:
    """Raise :class:`ModelFormatError` naming the field when a column's saved vocabulary is invalid."""
    where = f"state field 'pool.{name}'"
    if not isinstance(kept, list):
        raise ModelFormatError(f"state field 'vocab.{name}' must be a list of values, "
                               f"got {type(kept).__name__}")
    if not isinstance(pool, dict) or not isinstance(pool.get("values"), list) or \
            not isinstance(pool.get("counts"), list):
        raise ModelFormatError(f"{where} must be {{'values': [...], 'counts': [...]}}, got {pool!r:.80}")
    counts = pool["counts"]
    if len(counts) != len(pool["values"]):
        raise ModelFormatError(f"{where} has {len(pool['values'])} values but {len(counts)} counts")
    if any(not isinstance(c, int) or isinstance(c, bool) or c < 1 for c in counts):
        raise ModelFormatError(f"{where}: counts must be whole numbers >= 1")
    if set(map(repr, pool["values"])) & set(map(repr, kept)):
        raise ModelFormatError(f"{where}: a pooled value is also a kept category")
    if not isinstance(withheld, dict) or not isinstance(withheld.get("values"), int) or \
            not isinstance(withheld.get("rows"), int) or withheld["values"] < 0 or \
            withheld["rows"] < withheld["values"]:
        raise ModelFormatError(f"state field 'withheld.{name}' must hold counts 'values' <= 'rows' (>= 0), "
                               f"got {withheld!r:.80}")
    other = withheld.get("other")
    if other is not None and other not in kept:
        raise ModelFormatError(f"state field 'withheld.{name}.other' ({other!r}) is not a category of "
                               f"{name!r}")
