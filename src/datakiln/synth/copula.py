"""A streaming Gaussian-copula synthesizer: a mixture of copulas over empirical marginals.

Fitting takes two passes over the data, batch by batch, so a table larger than memory is
fine. Pass one counts categories and nulls exactly and keeps a uniform row sample
(``sample_rows``); from the sample come the quantile functions (``grid`` points, ends at
the exact min and max, spikes kept as flat stretches), the order of each column's
categories on the normal scale (sorted along their strongest link to the other columns,
so that education lines up with education-num) and the ``by`` columns: the one or two
categorical columns most tied to the rest (``by="auto"``), one copula per combination of
their values. Pass two maps every row to normal scores and accumulates each component's
correlation (made positive definite) and exact category and null counts.

A plain Gaussian copula only keeps monotone, linear-on-the-normal-scale dependence; the
mixture keeps everything that differs between the ``by`` groups (e.g. income by
relationship) exactly, which lifts pair trends and ML utility (see the README figures).

Sampling works in fixed chunks of 65,536 rows, each from its own seeded generator, so the
same seed gives the same rows whatever the batch size; chunks run on threads. Conditions
(``{"income": ">50K"}``, ``{"age": (30, 40)}``) are exact: components are reweighted by
the probability of the condition and the conditioned scores drawn from their truncated
conditional distributions; no rejection. Constraints (:mod:`datakiln.synth.constraints`)
hold by construction and are checked on every chunk. Identifier columns are regenerated
(unique); PII columns are replaced by format-valid fakes (``pii="fake"``) or dropped
(``pii="drop"``), never copied. Free-text columns (kind ``text``) are never copied either:
their length is modelled as a number (so it keeps its links to the other columns) and each
sampled row gets placeholder text of that length (``text="fake"``), or the column is left
out (``text="drop"``).

Categories: the ``max_categories`` most frequent values of a column are kept, the rest
pooled into one category sampled with their real frequencies, and values seen fewer than
``min_category_count`` times withheld as one explicit other value
(:mod:`datakiln.synth._vocab`). NaN, +inf and -inf are kept at their learned shares, like
nulls; quantiles come from finite values only. Fitting on fewer than
:data:`~datakiln.synth.base.MIN_TRAINING_ROWS` rows warns (:class:`SmallTrainingWarning`):
such a model mostly replays its training rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from threadpoolctl import threadpool_limits

from datakiln.dataset._executor import ordered_map
from datakiln.dataset._sketches import RowRandom, RowSample, row_key
from datakiln.dataset.dataset import as_dataset
from datakiln.errors import ConstraintError, InvalidArgumentError, ModelFormatError
from datakiln.schema import refuse_nested
from datakiln.synth._component import Component
from datakiln.synth._fakes import PLACEHOLDER_PATTERN, placeholder_collisions
from datakiln.synth._mixture import choose_by, order_categories
from datakiln.synth._ngram_copula import (
    batch_texts,
    check_condition,
    new_models,
    ngram_from_state,
    ngram_state,
)
from datakiln.synth._sampling import CHUNK_ROWS, CopulaSampling
from datakiln.synth._stats import Stats, quantiles
from datakiln.synth._validate import settings_problem
from datakiln.synth._vocab import Categories, build_vocabulary, check_vocabulary_state
from datakiln.synth.base import MIN_TRAINING_ROWS, SmallTrainingWarning, Synthesizer, column_role, register
from datakiln.synth.constraints import (
    Inequality,
    columns_of,
    parse_constraints,
    ticks,
    violations,
)
from datakiln.units import parse_bytes

__all__ = ["CHUNK_ROWS", "GaussianCopula"]


def _is_text(dtype: pa.DataType) -> bool:
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


@register
class GaussianCopula(CopulaSampling, Synthesizer):
    """Mixture of Gaussian copulas over empirical marginals, fitted in two streaming passes.

    Parameters
    ----------
    by : "auto", str, list of str or None
        Categorical columns whose value combinations get a copula each (default ``"auto"``:
        up to two columns chosen on the sample, at most ``max_components`` combinations);
        ``None`` fits one copula.
    max_components : int
        Most combinations of ``by`` values (default 32).
    min_component_rows : int
        Sample rows a component needs for its own quantile functions and correlation
        (default 200); smaller ones borrow the whole table's.
    constraints : list of str or constraint objects
        E.g. ``["start < end", "age >= 0", "visits: integer"]``; guaranteed in every sample.
    pii : "fake" or "drop"
        Replace PII columns with format-valid fakes (default) or leave them out.
    text : "fake" or "drop"
        Free-text columns (kind ``text``): placeholder text whose length distribution (and
        its links to the other columns) matches the training data, never a training value
        (default), or leave them out of the output schema.
    sample_rows : int
        Rows in the uniform sample behind quantiles and category order (default 200,000).
    grid : int
        Points of each quantile function (default 2,049).
    max_categories : int
        Most frequent categories modelled one by one per column (default 10,000); the rest
        are pooled into one category whose rows take pooled values at their real
        frequencies (never null).
    min_category_count : int
        Values seen fewer times than this are withheld: sampled rows show one explicit
        other value (``"(other)"`` in text-typed columns, null in others) instead (default 1:
        nothing withheld). The fit summary says how many values were withheld.
    memory_budget : str or int
        Budget for the fitting passes (default ``"1GB"``).
    threads : int or None
        Threads for sampling (default: one per core).
    seed : int
        Seed of the fitting randomness.
    epsilon : float or None
        Differential privacy budget ε (default None: no DP). When set, the fit is
        (ε, δ)-DP under zCDP accounting (:mod:`datakiln.synth.dp.copula`): noisy histograms on
        the declared ``domain`` and a noisy correlation matrix, half the budget each, one
        copula (mixture components switched off). ``math.inf`` runs the same pipeline
        without noise (for comparisons only).
    delta : float
        δ of the DP guarantee (default 1e-6; keep it well below 1/rows).
    domain : dict, path or :class:`datakiln.synth.dp.Domain`
        The public domain under DP: numeric bounds and category lists of every column, from
        the user or a YAML/JSON schema file, never from the data (:mod:`datakiln.synth.dp.domain`).
    """

    _state_version = 4  # 3: pooled and withheld categories, text lengths, NaN/±inf shares; 4: same
    # fields, but unconditioned scores are drawn in float32 (a seed gives other rows than under 3)

    def __init__(self, *, by: str | list[str] | None = "auto", max_components: int = 32,
                 min_component_rows: int = 200, constraints: list[Any] | None = None, pii: str = "fake",
                 text: str = "fake", sample_rows: int = 200_000, grid: int = 2049,
                 max_categories: int = 10_000, min_category_count: int = 1,
                 memory_budget: str | int | None = "1GB", threads: int | None = None, seed: int = 0,
                 epsilon: float | None = None, delta: float = 1e-6, domain: Any = None,
                 text_condition: str | None = None) -> None:
        self.by = by
        self.max_components = max_components
        self.min_component_rows = min_component_rows
        self.constraints = constraints
        self.pii = pii
        self.text = text
        self.sample_rows = sample_rows
        self.grid = grid
        self.max_categories = max_categories
        self.min_category_count = min_category_count
        self.memory_budget = memory_budget
        self.threads = threads
        self.seed = seed
        self.epsilon = epsilon
        self.delta = delta
        self.domain = domain
        self.text_condition = text_condition

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments (a DP domain as its plain mapping, ε = inf as ``"inf"``)."""
        params = super().get_params()
        if getattr(self, "dp_", None):  # fitted under DP: the domain it used, so the file stands alone
            params["domain"] = self.dp_["domain"]
        elif params["domain"] is not None and not isinstance(params["domain"], (dict, str)):
            params["domain"] = params["domain"].to_dict() if hasattr(params["domain"], "to_dict") else str(
                params["domain"])
        if isinstance(params["epsilon"], float) and params["epsilon"] == float("inf"):
            params["epsilon"] = "inf"
        return params

    # -- fitting -----------------------------------------------------------------------------
    def _validate(self, dataset: Any) -> None:
        if self.pii not in ("fake", "drop"):
            raise InvalidArgumentError(f"pii must be 'fake' or 'drop', got {self.pii!r}")
        if self.text not in ("fake", "drop", "ngram"):
            raise InvalidArgumentError(f"text must be 'fake' (placeholder text of matching lengths), 'ngram' "
                                       f"(a word n-gram model per column) or 'drop', got {self.text!r}")
        check_condition(self)
        problem = settings_problem(self)
        if problem is not None:
            raise InvalidArgumentError(problem)
        for name in ("max_categories", "min_category_count"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise InvalidArgumentError(f"{name} must be a whole number >= 1, got {value!r}")
        self.constraints_ = parse_constraints(self.constraints, dataset.columns)
        for constraint in self.constraints_:
            bad = [n for n in columns_of(constraint) if self.roles_[n] != "numeric"]
            if bad:
                raise InvalidArgumentError(f"constraint {str(constraint)!r} needs numeric, date or time "
                                           f"columns; {bad} are {[self.roles_[n] for n in bad]}")
        self.gaps_ = {c.high: c.low for c in self.constraints_ if isinstance(c, Inequality)}

    def _derive(self, table: pa.Table) -> pa.Table:
        """The table as modelled: the upper side of each inequality becomes its gap (float),
        a text column its length in characters (float)."""
        for high, low in self.gaps_.items():
            gap = ticks(table[high]) - ticks(table[low])
            index = table.schema.get_field_index(high)
            table = table.set_column(index, high, pa.array(gap, mask=np.isnan(gap)))
        for name in table.column_names:
            if self.roles_.get(name) == "text":
                index = table.schema.get_field_index(name)
                table = table.set_column(index, name, pc.cast(pc.utf8_length(table[name]), pa.float64()))
        return table

    def _columns(self, table: pa.Table) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                                                 dict[str, np.ndarray]]:
        """(category codes, numeric ticks, non-finite kinds) of the modelled columns of a derived table.

        Ticks are NaN for nulls, NaN and ±inf; the kinds (1 NaN, 2 +inf, 3 -inf, else 0)
        are given for float columns.
        """
        codes = {n: self._categories[n].encode(table[n]) for n in self.modelled_
                 if self.roles_[n] == "categorical"}
        numbers, kinds = {}, {}
        for name in self.modelled_:
            if self.roles_[name] not in ("numeric", "text"):
                continue
            x = ticks(table[name])
            if pa.types.is_floating(table[name].type):
                valid = np.asarray(table[name].is_valid().to_numpy(zero_copy_only=False), dtype=bool)
                kind = np.where(np.isnan(x) & valid, 1, 0) + np.where(x == np.inf, 2, 0) + np.where(
                    x == -np.inf, 3, 0)
                kinds[name] = kind.astype(np.int8)
                x = np.where(np.isinf(x), np.nan, x)
            numbers[name] = x
        return codes, numbers, kinds

    def _fit(self, data: Any) -> None:
        self.dp_, self.ngram_ = None, {}
        if self.epsilon is not None:  # differentially private: datakiln.synth.dp.copula
            from datakiln.synth.dp.copula import fit_dp

            fit_dp(self, data)
            return
        dataset = as_dataset(data, what="fit")
        budget = parse_bytes(self.memory_budget)
        refuse_nested(dataset.arrow_schema, "the Gaussian copula")
        kinds = dataset.schema
        self.roles_ = {f.name: column_role(kinds[f.name].kind, f.type) for f in dataset.arrow_schema}
        self.pii_ = {name: kinds[name].pii for name, role in self.roles_.items() if role == "pii"}
        self._validate(dataset)
        rng = np.random.default_rng(self.seed)
        sample = RowSample(self.sample_rows, key=row_key(self.seed, 0))  # by row index: any partitioning
        counts: dict[str, dict[Any, int]] = {n: {} for n, r in self.roles_.items() if r == "categorical"}
        avoid: dict[str, set[str]] = {n: set() for n, r in self.roles_.items() if r == "text"}
        rows, last_id = 0, {}
        ngram = new_models(self)
        for table, part in dataset._tables(self._first_pass_batch, memory_budget=budget):
            self._check_training(part["violations"], rows, table.num_rows)
            sample.add(table, first_row=rows)
            rows += table.num_rows
            for name, (values, found) in part["counts"].items():
                seen = counts[name]
                for value, count in zip(values, found):
                    seen[value] = seen.get(value, 0) + count
            for name, found in part["avoid"].items():
                avoid[name].update(found)
            for name, top in part["ids"].items():
                last_id[name] = max(last_id.get(name, top), top)
            for name, (texts, classes) in part["texts"].items():
                ngram[name].update(texts, classes)
            self._progress(table.num_rows)
        if rows == 0 or sample.table is None:
            raise InvalidArgumentError("fit needs at least one row")
        self.rows_, self.last_id_ = rows, last_id
        if rows < MIN_TRAINING_ROWS:
            warnings.warn(SmallTrainingWarning(
                f"GaussianCopula was fitted on only {rows} rows (fewer than {MIN_TRAINING_ROWS}): its "
                f"samples will mostly repeat training rows; fit on more data before sharing synthetic rows"),
                stacklevel=3)
        self.vocab_, self.pool_, self.withheld_ = {}, {}, {}
        for name, seen in counts.items():
            text_typed = _is_text(self._plain_type(name))
            self.vocab_[name], self.pool_[name], self.withheld_[name] = build_vocabulary(
                seen, int(self.max_categories), int(self.min_category_count), text_typed)
        self.avoid_ = {n: sorted(v) for n, v in avoid.items()}
        self._arrays()
        self.modelled_ = [n for n, r in self.roles_.items()
                          if r in ("numeric", "categorical") or (r == "text" and self.text == "fake")]
        self.ngram_ = {n: m.finish() for n, m in ngram.items()}
        self._fit_components(dataset, sample.table, rng, budget)

    def _first_pass_batch(self, table: pa.Table) -> tuple[pa.Table, dict[str, Any]]:
        """On a worker thread: constraint checks, category counts, identifier maxima of one batch."""
        part: dict[str, Any] = {"violations": {str(c): violations(table, c) for c in self.constraints_},
                                "counts": {}, "ids": {}, "avoid": {}, "texts": batch_texts(self, table)}
        for name, role in self.roles_.items():
            if role == "text" and self.text == "fake":  # training texts the placeholder could produce
                column = table[name]
                filler = pc.filter(column, pc.match_substring_regex(column, PLACEHOLDER_PATTERN))
                if len(filler):
                    part["avoid"][name] = placeholder_collisions(pc.unique(filler).to_pylist())
        table = self._derive(table)
        for name, role in self.roles_.items():
            column = table[name]
            if role == "categorical":
                summary = pc.value_counts(column.drop_null())
                part["counts"][name] = (summary.field("values").to_pylist(),
                                        summary.field("counts").to_pylist())
            elif role == "identifier" and pa.types.is_integer(column.type) and column.null_count < len(
                    column):
                part["ids"][name] = pc.max(column).as_py()
        return table.select([n for n, r in self.roles_.items()
                             if r != "pii" and not (r == "text" and self.text == "drop")]), part

    @staticmethod
    def _check_training(broken: dict[str, int], offset: int, rows: int) -> None:
        for constraint, bad in broken.items():
            if bad:
                raise ConstraintError(f"{bad} training rows (in rows {offset:,}..{offset + rows:,}) "
                                      f"break the constraint {constraint!r}; clean them or drop the "
                                      f"constraint")

    def _plain_type(self, name: str) -> pa.DataType:
        dtype = self.schema_.field(name).type
        return dtype.value_type if pa.types.is_dictionary(dtype) else dtype

    def _arrays(self) -> None:
        self._categories = {}
        for name, values in self.vocab_.items():
            plain = self._plain_type(name)
            pool, withheld = self.pool_[name], self.withheld_[name]
            self._categories[name] = Categories(
                pa.array(values, type=plain), pa.array(pool["values"], type=plain),
                np.asarray(pool["counts"], dtype=np.float64), withheld["other"])
        self._avoid = {n: frozenset(v) for n, v in self.avoid_.items()}

    def _fit_components(self, dataset: Any, sample: pa.Table, rng: np.random.Generator,
                        budget: int | None) -> None:
        codes, numbers, _ = self._columns(sample)
        kinds = {n: "numeric" if self.roles_[n] == "text" else self.roles_[n] for n in self.modelled_}
        whole = self._marginals(Component(list(self.modelled_), kinds), codes, numbers,
                                np.ones(sample.num_rows, dtype=bool))
        order_categories(whole, codes, numbers, rng)
        self.order_ = {n: whole.categories[n]["index"] for n in self.modelled_ if kinds[n] == "categorical"}
        self.by_ = choose_by(self.by, codes, numbers, self.roles_,
                             {n: c.size for n, c in self._categories.items()}, self.max_components)
        keys = self._keys(codes, sample.num_rows)
        free = [n for n in self.modelled_ if n not in self.by_]
        components = []
        for key in range(self._key_count()):
            members = keys == key
            component = Component(free, {n: kinds[n] for n in free}, fixed=self._fixed(key))
            own = members.sum() >= self.min_component_rows
            self._marginals(component, codes, numbers, members if own else np.ones(len(keys), dtype=bool))
            component.weight = 1.0 if own else 0.0  # 0.0 marks "borrows the whole table's correlation"
            components.append(component)
        whole_stats, stats = self._correlate(dataset, whole, components, budget)
        whole.correlation = whole_stats.correlation()
        self.components_ = []
        for component, stat in zip(components, stats):
            if stat.rows == 0:
                continue
            stat.finish(component, self.order_)
            if component.weight == 0.0 or stat.rows < self.min_component_rows:
                index = [self.modelled_.index(n) for n in component.columns]
                component.correlation = whole.correlation[np.ix_(index, index)]
            else:
                component.correlation = stat.correlation()
            component.weight = stat.rows / self.rows_
            self.components_.append(component)

    def _marginals(self, component: Component, codes: dict[str, np.ndarray], numbers: dict[str, np.ndarray],
                   members: np.ndarray) -> Component:
        """Null shares, category shares (global order) and quantiles from the sample rows ``members``."""
        for name in component.columns:
            if component.kinds[name] == "categorical":
                code = codes[name][members]
                component.null_share[name] = float((code < 0).mean()) if code.size else 0.0
                counts = np.bincount(code[code >= 0], minlength=self._categories[name].size).astype(float)
                order = getattr(self, "order_", {}).get(name, list(range(len(counts))))
                order = [i for i in order if counts[i] > 0]
                total = sum(counts[i] for i in order) or 1.0
                component.categories[name] = {"index": order, "shares": [counts[i] / total for i in order]}
            else:
                x = numbers[name][members]
                component.null_share[name] = float(np.isnan(x).mean()) if x.size else 0.0
                present = x[~np.isnan(x)]
                component.quantiles[name] = quantiles(present, self.grid)
        return component

    def _key_count(self) -> int:
        count = 1
        for name in self.by_:
            count *= self._categories[name].size + 1
        return count

    def _keys(self, codes: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """Component index of each of ``rows`` rows: the combination of its ``by`` codes (null last)."""
        key = np.zeros(rows, dtype=np.int64)
        for name in self.by_:
            size = self._categories[name].size + 1
            code = np.where(codes[name] < 0, size - 1, codes[name])
            key = key * size + code
        return key

    def _fixed(self, key: int) -> dict[str, int]:
        fixed = {}
        for name in reversed(self.by_):
            size = self._categories[name].size + 1
            key, code = divmod(key, size)
            fixed[name] = -1 if code == size - 1 else int(code)
        return dict(reversed(list(fixed.items())))

    def _correlate(self, dataset: Any, whole: Component, components: list[Component],
                   budget: int | None) -> tuple[Stats, list[Stats]]:
        """Pass two: per-component normal-score moments and exact counts, batches on threads.

        The whole table's moments are only gathered when a component must borrow them.
        """
        need_whole = bool(self.by_) and any(c.weight == 0.0 for c in components)
        whole_stats = Stats(whole)
        stats = [Stats(c) for c in components]

        def work(first_row: int, table: pa.Table) -> tuple[int, dict[int, Stats]]:
            # a row's jitter is keyed by (seed, component, column, row index), never by its batch
            ids = np.arange(first_row, first_row + table.num_rows, dtype=np.uint64)
            codes, numbers, special = self._columns(self._derive(table))
            parts: dict[int, Stats] = {}
            if need_whole:
                jitter = RowRandom(row_key(self.seed, 1, 2**32), ids)
                parts[-1] = Stats(whole).add(codes, numbers, special, None, jitter)
            keys = self._keys(codes, table.num_rows)
            present = np.unique(keys)
            for key in present:
                members = None if len(present) == 1 else keys == key
                jitter = RowRandom(row_key(self.seed, 1, int(key)), ids).take(members)
                parts[int(key)] = Stats(components[key]).add(codes, numbers, special, members, jitter)
            return table.num_rows, parts

        def tasks() -> Iterator[Callable[[], tuple[int, dict[int, Stats]]]]:
            first_row = 0
            for table in dataset.select(self.modelled_)._tables(memory_budget=budget):
                yield lambda first=first_row, t=table: work(first, t)
                first_row += table.num_rows

        with threadpool_limits(1):
            for rows, parts in ordered_map(tasks(), threads=self.threads):
                for key, part in parts.items():
                    (whole_stats if key < 0 else stats[key]).merge(part)
                self._progress(rows)
        if not need_whole and not self.by_:
            whole_stats = stats[0]
        return whole_stats, stats

    # -- model files ---------------------------------------------------------------------------
    def _to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state = {"roles": self.roles_, "pii": self.pii_, "rows": self.rows_, "last_id": self.last_id_,
                 "vocab": {n: _plain_values(values) for n, values in self.vocab_.items()},
                 "pool": {n: {"values": _plain_values(p["values"]), "counts": p["counts"]}
                          for n, p in self.pool_.items()},
                 "withheld": self.withheld_, "avoid": self.avoid_,
                 "order": self.order_, "by": self.by_, "modelled": self.modelled_,
                 "constraints": [str(c) for c in self.constraints_], "components": []}
        if getattr(self, "dp_", None):
            state["dp"] = self.dp_
        arrays: dict[str, np.ndarray] = {}
        if getattr(self, "ngram_", None):
            state["ngram"] = ngram_state(self.ngram_, arrays)
        for i, component in enumerate(self.components_):
            part, part_arrays = component.to_state(f"c{i}")
            state["components"].append(part)
            arrays.update(part_arrays)
        return state, arrays

    def _from_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if "components" not in state:
            raise ModelFormatError("the model file holds a version-1 GaussianCopula (one copula, from an "
                                   "older datakiln); fit the model again to save it in the current format")
        from datakiln.synth._validate import check_copula_state

        check_copula_state(self, state, arrays)  # every field, before any is used
        from datakiln.synth.dp.copula import check_dp_state

        self.dp_ = check_dp_state(self, state, arrays) or None
        self.roles_, self.pii_, self.rows_ = state["roles"], state["pii"], state["rows"]
        self.last_id_, self.order_, self.by_ = state["last_id"], state["order"], state["by"]
        self.modelled_ = state["modelled"]
        self.constraints_ = parse_constraints(state["constraints"], self.schema_.names)
        self.gaps_ = {c.high: c.low for c in self.constraints_ if isinstance(c, Inequality)}
        self.vocab_, self.pool_, self.withheld_ = {}, {}, {}
        empty_pool, nothing = {"values": [], "counts": []}, {"values": 0, "rows": 0, "other": None}
        pools, withheld = state.get("pool", {}), state.get("withheld", {})  # absent in version-2 files
        for name, values in state["vocab"].items():
            pool, held = pools.get(name, empty_pool), withheld.get(name, nothing)
            check_vocabulary_state(name, values, pool, held)
            plain = self._plain_type(name)
            self.vocab_[name] = pa.array(values).cast(plain).to_pylist() if values else []
            self.pool_[name] = {"values": pa.array(pool["values"]).cast(plain).to_pylist() if pool["values"]
                                else [], "counts": pool["counts"]}
            self.withheld_[name] = held
        self.avoid_ = state.get("avoid", {})
        text = [n for n, r in self.roles_.items() if r == "text"]
        if not isinstance(self.avoid_, dict) or set(self.avoid_) - set(text) or not all(
                isinstance(v, list) and all(isinstance(t, str) for t in v) for v in self.avoid_.values()):
            raise ModelFormatError(f"state field 'avoid' must map the text columns {text} to lists of "
                                   f"strings, got {self.avoid_!r:.80}")
        self.ngram_ = ngram_from_state(self, state, arrays)
        self._arrays()
        self.components_ = [Component.from_state(part, arrays, f"c{i}")
                            for i, part in enumerate(state["components"])]

    def null_shares(self) -> dict[str, float]:
        """Share of missing values (nulls; not NaN or ±inf) of each modelled column over the mixture."""
        shares = dict.fromkeys(self.modelled_, 0.0)
        for component in self.components_:
            for name in self.modelled_:
                if name in component.fixed:
                    shares[name] += component.weight * (component.fixed[name] < 0)
                else:
                    special = sum(component.nonfinite.get(name, ()))
                    shares[name] += component.weight * max(component.null_share[name] - special, 0.0)
        return shares

    def nonfinite_shares(self) -> dict[str, dict[str, float]]:
        """Shares of NaN, +inf and -inf of each float column that has any (over the mixture)."""
        out: dict[str, dict[str, float]] = {}
        for component in self.components_:
            for name, shares in component.nonfinite.items():
                found = out.setdefault(name, {"nan": 0.0, "+inf": 0.0, "-inf": 0.0})
                for key, share in zip(found, shares):
                    found[key] += component.weight * share
        return out

    def summary(self) -> dict[str, Any]:
        """What the fit learned and decided, as plain data (``kiln synth fit`` prints it).

        ``columns`` maps each column to ``{"role", "missing_share", "nonfinite", "categories",
        "pooled", "withheld", "other_value", "output"}``; ``warnings`` lists plain-language
        warnings (``small_training`` is True below :data:`MIN_TRAINING_ROWS` rows).
        """
        missing, special = self.null_shares(), self.nonfinite_shares()
        columns: dict[str, dict[str, Any]] = {}
        for name, role in self.roles_.items():
            record: dict[str, Any] = {"role": role, "missing_share": missing.get(name)}
            if name in special:
                record["nonfinite"] = special[name]
            if role == "categorical":
                record.update(categories=len(self.vocab_[name]), pooled=len(self.pool_[name]["values"]),
                              withheld=self.withheld_[name]["values"],
                              withheld_rows=self.withheld_[name]["rows"],
                              other_value=self.withheld_[name]["other"])
            how = {"pii": self.pii, "text": self.text}.get(role)
            record["output"] = ("left out" if how == "drop" else "format-valid fakes" if role == "pii"
                                else "word n-gram text" if how == "ngram"
                                else "placeholder text, lengths modelled" if role == "text"
                                else "regenerated (unique)" if role == "identifier" else "modelled")
            columns[name] = record
        small = self.rows_ < MIN_TRAINING_ROWS
        notes = [f"only {self.rows_} training rows (fewer than {MIN_TRAINING_ROWS}): samples will mostly "
                 f"repeat training rows"] if small else []
        dp = getattr(self, "dp_", None)
        if dp:
            notes.append(f"differentially private: epsilon={dp['epsilon']}, delta={dp['delta']:g} (zCDP; "
                         f"marginals {dp['split']['marginals']:.0%}, correlation "
                         f"{dp['split']['correlation']:.0%} of the budget); mixture switched off; row "
                         f"count noisy")
        return {"model": type(self).__name__, "rows": self.rows_, "by": list(self.by_), "dp": dp,
                "components": len(self.components_), "min_category_count": self.min_category_count,
                "max_categories": self.max_categories, "small_training": small, "warnings": notes,
                "columns": columns}

    # -- progress ------------------------------------------------------------------------------
    def _progress(self, rows: int) -> None:
        callback: Callable[[int], None] | None = getattr(self, "_on_progress", None)
        if callback is not None:
            callback(rows)


def _plain_values(values: list[Any]) -> list[Any]:
    return [v.isoformat() if hasattr(v, "isoformat") else v for v in values]
