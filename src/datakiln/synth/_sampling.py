"""Sampling half of :class:`~datakiln.synth.copula.GaussianCopula` (a mixin over its fitted state).

Rows come in fixed chunks of :data:`CHUNK_ROWS`, each from its own generator seeded by
``(seed, chunk index)``, so the same seed gives the same rows whatever the batch size;
chunks run on threads. Conditions reweight the components by the probability of the
condition (:meth:`CopulaSampling._plan`, integrated with a generator derived from the
caller's seed) and bound the conditioned scores (exact, no rejection). Categorical codes
become values through :class:`~datakiln.synth._vocab.Categories` (pooled rows draw a
pooled value), missing rows of float columns become null, NaN, +inf or -inf at the learned
shares, text columns get placeholder text of the sampled length, identifiers are
regenerated and PII columns faked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from threadpoolctl import threadpool_limits

from datakiln.dataset._executor import ordered_map
from datakiln.errors import ConstraintError, InvalidArgumentError, SchemaError
from datakiln.synth._component import Component
from datakiln.synth._fakes import fake_values, placeholder_text
from datakiln.synth._ngram_copula import fill_texts
from datakiln.synth._vocab import Categories
from datakiln.synth.constraints import Constraint, Integer, check, ticks

__all__ = ["CHUNK_ROWS", "CopulaSampling"]

CHUNK_ROWS = 65_536
_SPECIAL = np.array([0.0, np.nan, np.inf, -np.inf])  # value of each missing kind (0: a null, masked)


class CopulaSampling:
    """Sampling methods of the copula; the fitted state below comes from ``fit`` or a model file."""

    schema_: pa.Schema
    roles_: dict[str, str]
    pii_: dict[str, str | None]
    modelled_: list[str]
    components_: list[Component]
    vocab_: dict[str, list[Any]]
    pool_: dict[str, dict[str, list[Any]]]
    withheld_: dict[str, dict[str, Any]]
    last_id_: dict[str, int]
    gaps_: dict[str, str]
    constraints_: list[Constraint]
    _categories: dict[str, Categories]
    _avoid: dict[str, frozenset[str]]
    pii: str
    text: str
    threads: int | None
    min_category_count: int

    def _output_names(self) -> list[str]:
        dropped = {role for role, how in (("pii", self.pii), ("text", self.text)) if how == "drop"}
        return [n for n in self.schema_.names if self.roles_[n] not in dropped]

    def _sample(self, n: int, conditions: dict[str, Any], rng: np.random.Generator) -> pa.Table:
        pieces = list(self._batches(n, CHUNK_ROWS * 4, conditions, rng))
        return pa.concat_tables(pieces) if pieces else self.output_schema().empty_table()

    def _batches(self, n: int, batch_rows: int, conditions: dict[str, Any],
                 rng: np.random.Generator) -> Iterator[pa.Table]:
        seed = int(rng.integers(0, 2**62))  # derived from the caller's seed
        plan = self._plan(conditions, np.random.default_rng([seed, 2**32]))
        chunks = range((n + CHUNK_ROWS - 1) // CHUNK_ROWS)
        tasks = (lambda i=i: self._chunk(i, plan, conditions, np.random.default_rng([seed, i]))
                 for i in chunks)
        with threadpool_limits(1):  # chunks run in parallel; BLAS threads inside them would fight
            yield from self._gather(ordered_map(iter(tasks), threads=self.threads), n, batch_rows)

    @staticmethod
    def _gather(chunks: Iterator[pa.Table], n: int, batch_rows: int) -> Iterator[pa.Table]:
        """Cut the chunk stream (the last one trimmed) into tables of ``batch_rows`` rows."""
        buffer: list[pa.Table] = []
        buffered = produced = 0
        for chunk in chunks:
            chunk = chunk.slice(0, min(CHUNK_ROWS, n - produced))
            produced += chunk.num_rows
            buffer.append(chunk)
            buffered += chunk.num_rows
            while buffered >= batch_rows or (produced == n and buffered):
                table = pa.concat_tables(buffer)
                yield table.slice(0, batch_rows)
                rest = table.slice(batch_rows)
                buffer, buffered = ([rest], rest.num_rows) if rest.num_rows else ([], 0)

    def _plan(self, conditions: dict[str, Any], rng: np.random.Generator | None = None
              ) -> tuple[np.ndarray, list[dict[int, tuple[float, float]]]]:
        """Component probabilities given ``conditions`` and each component's uniform-scale limits.

        ``rng`` randomises the normal-CDF integration of boxes over several columns (a fixed
        generator when None): the plan never depends on NumPy's global random state.
        """
        rng = np.random.default_rng(0) if rng is None else rng
        wanted: dict[str, Any] = {}
        for name, value in conditions.items():
            if name in self.gaps_:
                raise InvalidArgumentError(f"{name!r} is the upper side of the constraint "
                                           f"'{self.gaps_[name]} < {name}' and is modelled as a gap; "
                                           f"condition on {self.gaps_[name]!r} instead")
            if self.roles_[name] == "text":
                raise InvalidArgumentError(f"{name!r} is free text (sampled as placeholder text); it cannot "
                                           f"be a condition")
            if self.roles_[name] == "categorical":
                wanted[name] = self._condition_code(name, value)
            elif self.roles_[name] == "numeric":
                wanted[name] = value
        weights, limits = [], []
        for component in self.components_:
            weight, box = component.weight, {}
            for name, value in wanted.items():
                if name in component.fixed:
                    weight *= float(component.fixed[name] == (-1 if value is None else value))
                    continue
                box[component.columns.index(name)] = component.bounds(name, value, self._tick)
            weights.append(weight * component.probability(box, rng))
            limits.append(box)
        total = float(np.sum(weights))
        if total <= 0:
            raise InvalidArgumentError(f"no training data matches the conditions {conditions}; "
                                       f"loosen them")
        return np.asarray(weights) / total, limits

    def _condition_code(self, name: str, value: Any) -> int | None:
        """The code of a categorical condition value (a pooled value: the pool's code)."""
        if value is None:
            return None
        if value in self.vocab_[name]:
            return self.vocab_[name].index(value)
        if value in self.pool_[name]["values"]:
            return self._categories[name].pool_code
        withheld = (f"; values seen fewer than min_category_count={self.min_category_count} times are "
                    f"withheld" if self.withheld_[name]["values"] else "")
        raise InvalidArgumentError(f"{value!r} is not a category of {name!r} seen in training "
                                   f"(e.g. {self.vocab_[name][:5]}){withheld}")

    def _tick(self, name: str, value: Any) -> float:
        dtype = self.schema_.field(name).type
        return float(ticks(pa.array([value]).cast(dtype))[0])

    def _chunk(self, index: int, plan: Any, conditions: dict[str, Any], rng: np.random.Generator) -> pa.Table:
        weights, limits = plan
        n = CHUNK_ROWS
        assignment = rng.choice(len(self.components_), size=n, p=weights)
        values = {name: (np.full(n, -1, dtype=np.int64) if self.roles_[name] == "categorical"
                         else np.zeros(n)) for name in self.modelled_}
        missing = {name: np.zeros(n, dtype=bool) for name in self.modelled_}
        for c, component in enumerate(self.components_):
            rows = np.flatnonzero(assignment == c)
            if rows.size == 0:
                continue
            z = component.normals(rows.size, limits[c], rng)
            for j, name in enumerate(component.columns):
                decoded, null = component.decode(name, z[:, j])
                if name in component.nonfinite and null.any():  # NaN / ±inf at their learned shares
                    where = np.flatnonzero(null)
                    kind = component.missing_kinds(name, where.size, rng)
                    decoded[where] = _SPECIAL[kind]
                    null = null.copy()
                    null[where] = kind == 0
                values[name][rows] = decoded
                missing[name][rows] = null
            for name, code in component.fixed.items():
                values[name][rows] = code
                missing[name][rows] = code < 0
        columns = self._assemble(values, missing, conditions, index, rng)
        fill_texts(self, columns, CHUNK_ROWS, rng)  # text="ngram": datakiln.synth._ngram_copula
        table = pa.table({name: columns[name] for name in self._output_names()})
        broken = check(table, self.constraints_)
        if broken:  # never expected: the constraints hold by construction
            raise ConstraintError(f"sampled rows break constraints {broken}; please report this")
        return table

    def _assemble(self, values: dict[str, np.ndarray], missing: dict[str, np.ndarray],
                  conditions: dict[str, Any], index: int, rng: np.random.Generator) -> dict[str, pa.Array]:
        n = CHUNK_ROWS
        integers = {c.column for c in self.constraints_ if isinstance(c, Integer)}
        columns: dict[str, pa.Array] = {}
        fakes = np.random.default_rng(rng.integers(0, 2**62))
        for name in self.modelled_:
            dtype = self.schema_.field(name).type
            if self.roles_[name] == "categorical":
                code = values[name]
                null = missing[name] | (code < 0)
                columns[name] = self._categories[name].decode(code, null, fakes).cast(dtype)
            elif self.roles_[name] == "text":
                columns[name] = placeholder_text(np.round(values[name]), fakes, dtype, missing[name],
                                                 self._avoid.get(name, frozenset()))
            elif name not in self.gaps_:
                x = np.round(values[name]) if name in integers else values[name]
                columns[name] = _restore(x, missing[name], dtype)
        for high, low in self.gaps_.items():
            start = ticks(columns[low])
            x = start + values[high]
            x = np.round(x) if high in integers else x
            columns[high] = _restore(x, missing[high] | np.isnan(start), self.schema_.field(high).type)
        for name, role in self.roles_.items():
            dtype = self.schema_.field(name).type
            if role == "pii" and self.pii == "fake":
                columns[name] = fake_values(self.pii_.get(name), n, fakes, dtype)
            elif role == "identifier":
                start = self.last_id_.get(name, -1) + 1 + index * n
                ids = np.arange(start, start + n)
                columns[name] = (pa.array(ids).cast(dtype) if pa.types.is_integer(dtype)
                                 else pa.array([f"id-{i:012d}" for i in ids]).cast(dtype))
        for name, value in conditions.items():
            dtype = self.schema_.field(name).type
            if self.roles_[name] in ("pii", "identifier") or (
                    self.roles_[name] == "numeric" and not isinstance(value, (tuple, list))):
                columns[name] = pa.array([value] * n).cast(dtype)  # a fixed value, exactly
            elif self.roles_[name] == "numeric":  # a range: guaranteed, not just likely
                # zone-aware timestamps clamp on their UTC ticks (Arrow's element-wise
                # min/max have no kernel for a zone); the zone is put back after
                plain = pa.timestamp(dtype.unit) if pa.types.is_timestamp(dtype) else dtype
                low, high = (pa.scalar(v).cast(dtype).cast(plain) for v in value)
                clamped = pc.min_element_wise(columns[name].cast(plain), high)
                columns[name] = pc.max_element_wise(clamped, low).cast(dtype)
            elif value is not None and value in self.pool_[name]["values"]:  # a pooled category, exactly
                columns[name] = pa.array([value] * n).cast(dtype)
        return columns

    def output_schema(self) -> pa.Schema:
        return pa.schema([self.schema_.field(n) for n in self._output_names()])


def _restore(x: np.ndarray, missing: np.ndarray, dtype: pa.DataType) -> pa.Array:
    """Numbers back to the column's type: integers and ticks rounded, decimals to scale."""
    if pa.types.is_integer(dtype):
        return pa.array(np.round(x).astype(np.int64), mask=missing).cast(dtype)
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype) or pa.types.is_duration(dtype) or \
            pa.types.is_time(dtype):
        storage = pa.int32() if dtype.bit_width == 32 else pa.int64()
        return pa.array(np.round(x).astype(np.int64), mask=missing).cast(storage).cast(dtype)
    if pa.types.is_decimal(dtype):
        return pc.cast(pc.round(pa.array(x, mask=missing), ndigits=dtype.scale), dtype)
    try:
        return pa.array(x, mask=missing).cast(dtype)
    except pa.ArrowInvalid as exc:  # pragma: no cover - a numeric kind on an odd type
        raise SchemaError(f"cannot turn sampled numbers back into {dtype}: {exc}") from exc
