"""NeuralSynthesizer: the Synthesizer contract for models that learn on the transformed space.

Shared by TVAE, CTGAN, PCASynthesizer and later models: everything but the network.

- ``fit(data, init=None)`` takes a Dataset, Arrow table or pandas DataFrame. A neural
  epoch needs the rows in memory, so the fit streams the data once into a uniform sample
  of at most ``max_rows`` rows (default 1,000,000; exact counts of rows and identifier
  maxima come from the whole stream) and trains on that. A ``validation`` share of the
  sample (default 10%) is held out for early stopping on its fidelity.
- Columns: identifiers are regenerated (unique), PII replaced by format-valid fakes
  (``pii="fake"``) or left out (``"drop"``), free text by placeholder text whose length
  is modelled (``text="fake"``) or left out; never a training value.
- Constraints (:mod:`datakiln.synth.constraints`): ``low < high`` is learned as the gap
  ``high - low`` (positive in training, so it stays positive), bounds hold because decoded
  values never leave the training range, ``integer`` rounds; every output is checked.
- Conditions: :mod:`datakiln.synth.neural._conditions` (exact; bounded rejection).
- ``init=fitted`` warm-starts from a model of the same class fitted on related data with
  the same columns: its encoder's categories come first (new ones are appended) and every
  weight whose shape allows is copied (rows/columns of the data layout mapped by value).
- Sampling runs in chunks of :data:`CHUNK_ROWS`, each from a generator seeded by
  ``(seed, chunk)``, so the same seed gives the same rows whatever ``batch_rows`` is.

A model implements ``_learn(matrix, validation)`` (training), ``_generate(m, rng, plan)``
(a float matrix in the encoder's layout, activations applied) and
``_model_state`` / ``_load_model_state``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.dataset._sketches import RowSample
from datakiln.dataset.dataset import as_dataset
from datakiln.errors import ConstraintError, InvalidArgumentError, ModelFormatError
from datakiln.schema import numeric_values as ticks
from datakiln.schema import refuse_nested
from datakiln.synth._fakes import fake_values, placeholder_text
from datakiln.synth._sampling import _restore
from datakiln.synth.base import MIN_TRAINING_ROWS, SmallTrainingWarning, Synthesizer, column_role
from datakiln.synth.constraints import Inequality, Integer, check, columns_of, parse_constraints, violations
from datakiln.synth.neural._conditions import ConditionPlan, make_plan, rejection_stream
from datakiln.synth.neural._encoding import Encoder

__all__ = ["CHUNK_ROWS", "NeuralSynthesizer"]

CHUNK_ROWS = 16_384
_ROLES = ("numeric", "categorical", "text", "identifier", "pii")


class NeuralSynthesizer(Synthesizer):
    """Base of the models on the transformed space (see the module docstring)."""

    _state_version: ClassVar[int] = 1
    _stochastic_decode: ClassVar[bool] = False  # draw slots from the outputs instead of argmax

    # common parameters (each subclass lists them in its own __init__)
    constraints: list[Any] | None
    pii: str
    text: str
    max_rows: int
    max_modes: int
    max_categories: int
    validation: float
    seed: int

    def fit(self, data: Any, on_progress: Any = None, init: NeuralSynthesizer | None = None
            ) -> NeuralSynthesizer:
        """Learn from ``data``; ``init`` (a fitted model of this class, same columns) warm-starts."""
        if init is not None:
            if type(init) is not type(self) or not hasattr(init, "encoder_"):
                raise InvalidArgumentError(f"init must be a fitted {type(self).__name__}, got "
                                           f"{type(init).__name__}"
                                           f"{'' if hasattr(init, 'encoder_') else ' (not fitted)'}")
        self._init = init
        try:
            super().fit(data, on_progress=on_progress)
        finally:
            self._init = None
        return self

    # -- fitting -----------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.pii not in ("fake", "drop"):
            raise InvalidArgumentError(f"pii must be 'fake' or 'drop', got {self.pii!r}")
        if self.text not in ("fake", "drop"):
            raise InvalidArgumentError(f"text must be 'fake' (placeholder text of modelled lengths) or "
                                       f"'drop', got {self.text!r}")
        for name in ("max_rows", "max_modes", "max_categories"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise InvalidArgumentError(f"{name} must be a whole number >= 1, got {value!r}")
        if not isinstance(self.validation, (int, float)) or not 0 <= self.validation < 1:
            raise InvalidArgumentError(f"validation must be a share in [0, 1), got {self.validation!r}")

    def _fit(self, data: Any) -> None:
        self._check_params()
        dataset = as_dataset(data, what="fit")
        refuse_nested(dataset.arrow_schema, type(self).__name__)
        kinds = dataset.schema
        self.roles_ = {f.name: column_role(kinds[f.name].kind, f.type) for f in dataset.arrow_schema}
        self.pii_ = {n: kinds[n].pii for n, r in self.roles_.items() if r == "pii"}
        self.constraints_ = parse_constraints(self.constraints, dataset.columns)
        for constraint in self.constraints_:
            bad = [n for n in columns_of(constraint) if self.roles_[n] != "numeric"]
            if bad:
                raise InvalidArgumentError(f"constraint {str(constraint)!r} needs numeric, date or time "
                                           f"columns; {bad} are {[self.roles_[n] for n in bad]}")
        self.gaps_ = {c.high: c.low for c in self.constraints_ if isinstance(c, Inequality)}
        self.modelled_ = [n for n, r in self.roles_.items()
                          if r in ("numeric", "categorical") or (r == "text" and self.text == "fake")]
        if not self.modelled_:
            raise InvalidArgumentError(f"{type(self).__name__} needs at least one numeric, categorical or "
                                       f"text column to learn; all columns are identifiers or PII")
        rng = np.random.default_rng(self.seed)
        table = self._gather(dataset, rng)
        table = self._derive(table)
        if self.rows_ < MIN_TRAINING_ROWS:
            warnings.warn(SmallTrainingWarning(
                f"{type(self).__name__} was fitted on only {self.rows_} rows "
                f"(fewer than {MIN_TRAINING_ROWS}): "
                f"its samples will mostly repeat training rows; fit on more data before sharing them"),
                stacklevel=4)
        order = rng.permutation(table.num_rows)
        held = int(round(self.validation * table.num_rows)) if table.num_rows >= 200 else 0
        train = table.take(pa.array(np.sort(order[held:])))
        valid = table.take(pa.array(np.sort(order[:held]))) if held else None
        integers = frozenset(c.column for c in self.constraints_ if isinstance(c, Integer))
        roles = {n: ("numeric" if r == "text" else r) for n, r in self.roles_.items()}
        init = getattr(self, "_init", None)
        if init is not None:
            if init.schema_ != self.schema_ or init.modelled_ != self.modelled_ or init.roles_ != self.roles_:
                raise InvalidArgumentError(f"init was fitted on other columns or column kinds "
                                           f"({init.schema_.names}) than this data ({self.schema_.names}); "
                                           f"a warm start needs the same schema")
            self.encoder_ = init.encoder_.extend(train.select(self.modelled_))
        else:
            self.encoder_ = Encoder.fit(train.select(self.modelled_), roles, rng,
                                        max_modes=int(self.max_modes),
                                        max_categories=int(self.max_categories), integers=integers)
        matrix = self.encoder_.transform(train.select(self.modelled_), rng)
        reference = None
        if valid is not None:
            reference = self.encoder_.discrete(self._values(valid))
        self._learn(matrix, reference, rng, init)

    def _gather(self, dataset: Any, rng: np.random.Generator) -> pa.Table:
        """One pass: a uniform sample of ``max_rows`` rows, the row count, identifier maxima."""
        sample = RowSample(int(self.max_rows))
        rows, last_id = 0, {}
        keep = [n for n in dataset.columns if self.roles_[n] not in ("pii", "identifier")]
        for table in dataset._tables():
            for constraint in self.constraints_:
                bad = violations(table, constraint)
                if bad:
                    raise ConstraintError(f"{bad} training rows (in rows "
                                          f"{rows:,}..{rows + table.num_rows:,}) "
                                          f"break the constraint {str(constraint)!r}; clean them or drop "
                                          f"the constraint")
            for name, role in self.roles_.items():
                column = table[name]
                if role == "identifier" and pa.types.is_integer(column.type) and \
                        column.null_count < len(column):
                    top = pc.max(column).as_py()
                    last_id[name] = max(last_id.get(name, top), top)
            rows += table.num_rows
            sample.add(table.select(keep), rng)
            self._report(table.num_rows)
        if rows == 0 or sample.table is None:
            raise InvalidArgumentError("fit needs at least one row")
        self.rows_, self.last_id_ = rows, last_id
        return sample.table

    def _derive(self, table: pa.Table) -> pa.Table:
        """The table as modelled: each inequality's upper side as its gap, texts as their lengths."""
        for high, low in self.gaps_.items():
            gap = ticks(table[high]) - ticks(table[low])
            index = table.schema.get_field_index(high)
            table = table.set_column(index, high, pa.array(gap, mask=np.isnan(gap)))
        for name in table.column_names:
            if self.roles_.get(name) == "text":
                index = table.schema.get_field_index(name)
                table = table.set_column(index, name, pc.cast(pc.utf8_length(table[name]), pa.float64()))
        return table

    def _values(self, table: pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Modelled columns of a derived table as (codes or ticks, missing) like ``Encoder.inverse``."""
        out = {}
        for col in self.encoder_.columns:
            name = col["name"]
            if col["kind"] == "categorical":
                code = self.encoder_._categories[name].encode(table[name])
                out[name] = (code, code < 0)
            else:
                x = ticks(table[name])
                out[name] = (np.where(np.isfinite(x), x, 0.0), ~np.isfinite(x))
        return out

    def _report(self, rows: int) -> None:
        callback = getattr(self, "_on_progress", None)
        if callback is not None:
            callback(rows)

    # -- for subclasses ----------------------------------------------------------------------
    def _learn(self, matrix: np.ndarray, reference: np.ndarray | None, rng: np.random.Generator,
               init: NeuralSynthesizer | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _generate(self, m: int, rng: np.random.Generator, plan: ConditionPlan
                  ) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:  # pragma: no cover
        raise NotImplementedError

    def _load_model_state(self, state: Any, arrays: dict[str, np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError

    def fidelity(self, reference: np.ndarray, rng: np.random.Generator, rows: int | None = None) -> float:
        """Validation fidelity in [0, 1]: mean of 1 - TV distance of every column's and every
        pair's binned distribution, generated rows against ``reference`` (from ``discrete``)."""
        rows = rows or len(reference)
        generated = self.encoder_.discrete(self.encoder_.inverse(
            self._generate(rows, rng, ConditionPlan()), rng if self._stochastic_decode else None))
        return binned_similarity(reference, generated, rng)

    # -- sampling ----------------------------------------------------------------------------
    def _output_names(self) -> list[str]:
        dropped = {role for role, how in (("pii", self.pii), ("text", self.text)) if how == "drop"}
        return [n for n in self.schema_.names if self.roles_[n] not in dropped]

    def output_schema(self) -> pa.Schema:
        return pa.schema([self.schema_.field(n) for n in self._output_names()])

    def _sample(self, n: int, conditions: dict[str, Any], rng: np.random.Generator) -> pa.Table:
        pieces = list(self._batches(n, max(n, 1), conditions, rng))
        return pa.concat_tables(pieces) if pieces else self.output_schema().empty_table()

    def _batches(self, n: int, batch_rows: int, conditions: dict[str, Any],
                 rng: np.random.Generator) -> Iterator[pa.Table]:
        plan = make_plan(conditions, self.roles_, self.schema_, self.encoder_, self.gaps_)
        seed = int(rng.integers(0, 2**62))

        def generate(index: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
            chunk_rng = np.random.default_rng([seed, index])
            matrix = self._generate(CHUNK_ROWS, chunk_rng, plan)
            return self.encoder_.inverse(matrix, chunk_rng if self._stochastic_decode else None)

        buffer: list[pa.Table] = []
        buffered = emitted = 0
        for index, columns in rejection_stream(generate, n, CHUNK_ROWS, plan):
            table = self._assemble(columns, plan, emitted + buffered, np.random.default_rng([seed, index, 1]))
            buffer.append(table)
            buffered += table.num_rows
            while buffered >= batch_rows or (emitted + buffered == n and buffered):
                whole = pa.concat_tables(buffer)
                out = whole.slice(0, batch_rows)
                emitted += out.num_rows
                rest = whole.slice(batch_rows)
                buffer, buffered = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
                yield out

    def _assemble(self, columns: dict[str, tuple[np.ndarray, np.ndarray]], plan: ConditionPlan, offset: int,
                  rng: np.random.Generator) -> pa.Table:
        """Decoded values → the output table (types, gaps, texts, identifiers, fakes), checked."""
        n = len(next(iter(columns.values()))[0])
        integers = {c.column for c in self.constraints_ if isinstance(c, Integer)}
        out: dict[str, pa.Array] = {}
        for name in self.modelled_:
            values, missing = columns[name]
            dtype = self.schema_.field(name).type
            if self.roles_[name] == "text":
                out[name] = placeholder_text(np.round(values), rng, dtype, missing)
            elif name not in self.gaps_:
                out[name] = self.encoder_.to_arrow(name, values, missing, rng, dtype)
        for high, low in self.gaps_.items():
            values, missing = columns[high]
            x = ticks(out[low]) + values
            x = np.round(x) if high in integers else x
            out[high] = _restore(x, missing | np.isnan(x), self.schema_.field(high).type)
        for name, role in self.roles_.items():
            dtype = self.schema_.field(name).type
            if name in plan.fixed:
                out[name] = pa.array([plan.fixed[name]] * n).cast(dtype)
            elif role == "pii" and self.pii == "fake":
                out[name] = fake_values(self.pii_.get(name), n, rng, dtype)
            elif role == "identifier":
                start = self.last_id_.get(name, -1) + 1 + offset
                ids = np.arange(start, start + n)
                out[name] = (pa.array(ids).cast(dtype) if pa.types.is_integer(dtype)
                             else pa.array([f"id-{i:012d}" for i in ids]).cast(dtype))
        table = pa.table({name: out[name] for name in self._output_names()})
        broken = check(table, self.constraints_)
        if broken:  # never expected: constraints hold by construction
            raise ConstraintError(f"sampled rows break constraints {broken}; please report this")
        return table

    # -- model files ---------------------------------------------------------------------------
    def _to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        model_state, arrays = self._model_state()
        state = {"roles": self.roles_, "pii": self.pii_, "rows": self.rows_, "last_id": self.last_id_,
                 "modelled": self.modelled_, "constraints": [str(c) for c in self.constraints_],
                 "encoder": self.encoder_.to_state(), "model": model_state}
        return state, arrays

    def _from_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        names = self.schema_.names
        roles = state.get("roles")
        if not isinstance(roles, dict) or list(roles) != names or not all(
                r in _ROLES for r in roles.values()):
            raise ModelFormatError(f"state field 'roles' must map the columns {names} to one of {_ROLES}, "
                                   f"got {roles!r:.120}")
        pii = state.get("pii")
        if not isinstance(pii, dict) or set(pii) != {n for n, r in roles.items() if r == "pii"} or not all(
                v is None or isinstance(v, str) for v in pii.values()):
            raise ModelFormatError(f"state field 'pii' must map the PII columns to a PII type, got "
                                   f"{pii!r:.80}")
        rows = state.get("rows")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            raise ModelFormatError(f"state field 'rows' must be a whole number >= 1, got {rows!r:.40}")
        last_id = state.get("last_id")
        if not isinstance(last_id, dict) or not all(
                roles.get(k) == "identifier" and isinstance(v, int) and not isinstance(v, bool)
                for k, v in last_id.items()):
            raise ModelFormatError(f"state field 'last_id' must map identifier columns to integers, got "
                                   f"{last_id!r:.80}")
        modelled = state.get("modelled")
        if not isinstance(modelled, list) or not modelled or not all(
                roles.get(n) in ("numeric", "categorical", "text") for n in modelled):
            raise ModelFormatError(f"state field 'modelled' must list numeric, categorical or text columns, "
                                   f"got {modelled!r:.80}")
        self.roles_, self.pii_, self.rows_ = roles, pii, rows
        self.last_id_, self.modelled_ = last_id, modelled
        constraints = state.get("constraints")
        if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
            raise ModelFormatError("state field 'constraints' must be a list of strings")
        self.constraints_ = parse_constraints(constraints, names)
        self.gaps_ = {c.high: c.low for c in self.constraints_ if isinstance(c, Inequality)}
        encoder_roles = {n: ("numeric" if r == "text" else r) for n, r in roles.items()}
        self.encoder_ = Encoder.from_state(state.get("encoder"), self.schema_, encoder_roles)
        if self.encoder_.names != modelled:
            raise ModelFormatError(f"state field 'encoder' covers {self.encoder_.names}, not the modelled "
                                   f"columns {modelled}")
        bad = [n for n, a in arrays.items() if a.dtype.kind == "f" and not np.isfinite(a).all()]
        if bad:
            raise ModelFormatError(f"arrays {bad} hold NaN or infinite weights")
        self._load_model_state(state.get("model"), arrays)

    def summary(self) -> dict[str, Any]:
        """What the fit learned, as plain data (``kiln synth fit`` prints it)."""
        columns = {}
        for name, role in self.roles_.items():
            how = {"pii": self.pii, "text": self.text}.get(role)
            output = ("left out" if how == "drop" else "format-valid fakes" if role == "pii"
                      else "placeholder text, lengths modelled" if role == "text"
                      else "regenerated (unique)" if role == "identifier" else "modelled")
            record: dict[str, Any] = {"role": role, "missing_share": None, "output": output}
            if name in self.encoder_.names:
                col = self.encoder_.columns[self.encoder_.names.index(name)]
                record["modes" if col["kind"] == "numeric" else "categories"] = (
                    len(col["means"]) if col["kind"] == "numeric" else len(col["kept"]))
            columns[name] = record
        small = self.rows_ < MIN_TRAINING_ROWS
        notes = [f"only {self.rows_} training rows (fewer than {MIN_TRAINING_ROWS}): samples will mostly "
                 f"repeat training rows"] if small else []
        return {"model": type(self).__name__, "rows": self.rows_, "small_training": small,
                "warnings": notes, "columns": columns, "training": getattr(self, "history_", None)}


def binned_similarity(real: np.ndarray, fake: np.ndarray, rng: np.random.Generator, max_pairs: int = 200
                      ) -> float:
    """Mean of ``1 - TV`` over every column and up to ``max_pairs`` column pairs of small codes."""
    if real.size == 0:
        return 1.0
    sizes = np.maximum(real.max(axis=0), fake.max(axis=0)) + 1
    scores = []
    for j in range(real.shape[1]):
        p = np.bincount(real[:, j], minlength=sizes[j]) / len(real)
        q = np.bincount(fake[:, j], minlength=sizes[j]) / len(fake)
        scores.append(1 - 0.5 * np.abs(p - q).sum())
    shapes = float(np.mean(scores))
    pairs = [(a, b) for a in range(real.shape[1]) for b in range(a + 1, real.shape[1])]
    if len(pairs) > max_pairs:
        pairs = [pairs[i] for i in rng.choice(len(pairs), max_pairs, replace=False)]
    if not pairs:
        return shapes
    trends = []
    for a, b in pairs:
        size = int(sizes[a] * sizes[b])
        p = np.bincount(real[:, a] * sizes[b] + real[:, b], minlength=size) / len(real)
        q = np.bincount(fake[:, a] * sizes[b] + fake[:, b], minlength=size) / len(fake)
        trends.append(1 - 0.5 * np.abs(p - q).sum())
    return 0.5 * shapes + 0.5 * float(np.mean(trends))
