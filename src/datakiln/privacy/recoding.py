"""The least generalisation of a table that makes it k-anonymous: :func:`generalize_to_k`.

**Search**: an exact, global (full-domain) recoding search over the lattice of
per-attribute hierarchy levels, as ARX's optimal search does — every quasi-identifier is
generalised to one level of its hierarchy for the whole table, and rows left in classes
smaller than ``k`` are suppressed (removed) if they are at most ``max_suppression`` of the
rows. Among the nodes that hold, the one of least information loss wins; nodes are pruned by
monotonicity (see :mod:`datakiln.privacy._lattice`). It runs on the counts per distinct
quasi-identifier combination (one streaming pass), then a second lazy pass writes the rows.

**Information loss** (``metric``):

- ``"discernibility"`` (Bayardo & Agrawal): ``sum over kept classes of |class|^2`` plus
  ``N`` per suppressed row — every row is charged the number of rows it cannot be told from.
- ``"loss"`` (Iyengar; ARX's "Loss"): the mean over rows and quasi-identifiers of the cell's
  generalisation loss in [0, 1] (see :mod:`datakiln.privacy._hierarchy`), 1 for a suppressed
  row.

The result also carries a **naive global recoding** for comparison: every quasi-identifier
one level up at a time until k holds under the same suppression limit. The search's optimum
is never worse than it (the naive node is in the lattice).

>>> out = generalize_to_k(ds, ["age", "sex", "race"], k=10)             # doctest: +SKIP
>>> out.report.levels, out.report.loss, out.report.naive["loss"]        # doctest: +SKIP
>>> out.dataset.write("anonymised.parquet")                              # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError, SchemaError
from datakiln.privacy._counts import COUNT, check_columns, group_counts, value_codes
from datakiln.privacy._hierarchy import Hierarchy, build, read_hierarchy_file
from datakiln.privacy._lattice import METRICS, Keyer, Lattice, NodeResult, search


@dataclass
class GeneralizationReport:
    """What :func:`generalize_to_k` changed and what it cost.

    Attributes
    ----------
    levels : dict
        The chosen hierarchy level per quasi-identifier (0 = unchanged).
    changes : list of dict
        Per quasi-identifier: ``column``, ``level``, ``top``, ``change`` (e.g. "intervals of
        width 10"), ``distinct_before`` and ``distinct_after``.
    rows, rows_suppressed, suppressed_share : number
        Rows in, rows removed (in classes below k), and their share.
    k_achieved, classes : int
        The smallest class and the number of classes after generalisation.
    discernibility, loss : float
        Both loss metrics of the chosen node (``metric`` says which one was minimised).
    naive : dict
        The same figures for the naive global recoding (``levels``, ``discernibility``,
        ``loss``, ``rows_suppressed``, ``suppressed_share``, ``k_achieved``).
    lattice_nodes, nodes_evaluated, nodes_pruned : int
        Size of the search and how much pruning saved.
    """

    quasi_identifiers: list[str]
    k: int
    max_suppression: float
    metric: str
    search: str
    levels: dict[str, int]
    changes: list[dict[str, Any]]
    rows: int
    rows_suppressed: int
    suppressed_share: float
    k_achieved: int
    classes: int
    discernibility: float
    loss: float
    naive: dict[str, Any]
    lattice_nodes: int
    nodes_evaluated: int
    nodes_pruned: int
    seconds: float = 0.0
    hierarchies: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain Python data (JSON-ready)."""
        return asdict(self)

    def to_json(self, path: str | os.PathLike[str] | None = None, *, overwrite: bool = False,
                inputs: Iterable[str | os.PathLike[str]] = ()) -> str:
        """The report as JSON (first key ``"datakiln": {"kind": "generalization-report"}``),
        written atomically to ``path`` when given (see :func:`datakiln.io.write.write_text_atomic`)."""
        from datakiln.io.write import report_marker, write_text_atomic

        text = json.dumps({**report_marker("generalization-report"), **self.to_dict()}, indent=2,
                          default=str)
        if path is not None:
            write_text_atomic(path, text, overwrite=overwrite, inputs=inputs)
        return text


@dataclass
class Generalization:
    """The result of :func:`generalize_to_k`: the generalised (lazy) ``dataset`` and its
    ``report``; unpacks as ``dataset, report = generalize_to_k(...)``."""

    dataset: Any
    report: GeneralizationReport

    def __iter__(self) -> Iterator[Any]:
        return iter((self.dataset, self.report))


def _specs(hierarchies: Any, qis: Sequence[str]) -> dict[str, Any]:
    if hierarchies is None:
        return {}
    if isinstance(hierarchies, str | os.PathLike):  # one YAML file: {column: {...} or path}
        data = read_hierarchy_file(hierarchies)
        return {c: data[c] for c in qis if c in data}
    if not isinstance(hierarchies, Mapping):
        raise InvalidArgumentError(
            "hierarchies must be a mapping column -> (interval widths, 'suppress', mapping or "
            f"CSV/YAML file) or a YAML file, got {type(hierarchies).__name__}")
    unknown = [c for c in hierarchies if c not in qis]
    if unknown:
        raise InvalidArgumentError(f"hierarchies were given for {unknown}, which are not among the "
                                   f"quasi-identifiers {list(qis)}")
    return dict(hierarchies)


def _validate(k: Any, max_suppression: Any, metric: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidArgumentError(f"k must be a whole number of at least 1, got {k!r}")
    if isinstance(max_suppression, bool) or not isinstance(max_suppression, int | float) or \
            not 0 <= max_suppression <= 1:
        raise InvalidArgumentError(
            f"max_suppression is a share of rows between 0 and 1, got {max_suppression!r}")
    if metric not in METRICS:
        raise InvalidArgumentError(f"metric must be one of {list(METRICS)}, got {metric!r}")


def generalize_to_k(data: Any, quasi_identifiers: Sequence[str], k: int = 10, *,
                    hierarchies: Any = None, max_suppression: float = 0.01,
                    metric: str = "discernibility", max_nodes: int = 200_000,
                    memory_budget: int | str | None = "1GB",
                    on_progress: Callable[[int], None] | None = None) -> Generalization:
    """Generalise the quasi-identifiers as little as possible until every class has ``k`` rows.

    Parameters
    ----------
    data : Dataset, pyarrow.Table or pandas.DataFrame
        The table (read twice, lazily: counting, then writing).
    quasi_identifiers : list of str
        The columns to generalise.
    k : int
        The smallest class size wanted (default 10).
    hierarchies : mapping or path, optional
        Per column: a list of interval widths (numbers, each a multiple of the one before),
        ``"suppress"``, a mapping ``value -> [labels per level]``, or a CSV/YAML hierarchy
        file; or one YAML file ``{column: {value: [labels]}}``. Defaults: numbers get
        intervals of doubling width, other columns go straight to ``'*'``.
    max_suppression : float
        The largest share of rows that may be removed (default 0.01, 1%).
    metric : {"discernibility", "loss"}
        The information loss minimised (both are reported).
    max_nodes : int
        Refuse lattices larger than this (default 200,000 nodes).
    memory_budget : int or str, optional
        Bytes the counts per combination may take (default ``"1GB"``).
    on_progress : callable, optional
        Called with each counted batch's row count.

    Returns
    -------
    Generalization
        ``.dataset``: the rows with generalised quasi-identifiers (text labels such as
        ``"[20, 30)"`` or ``"*"`` where generalised) and suppressed rows removed, lazy;
        ``.report``: a :class:`GeneralizationReport`.
    """
    from datakiln.dataset.dataset import as_dataset

    started = time.perf_counter()
    dataset = as_dataset(data, what="generalize_to_k")
    qis = list(quasi_identifiers)
    if not qis or len(set(qis)) < len(qis):
        raise InvalidArgumentError(f"give one or more distinct quasi-identifiers, got {qis}")
    check_columns(qis, dataset, "quasi-identifiers")
    _validate(k, max_suppression, metric)
    specs = _specs(hierarchies, qis)
    (snapshot,) = group_counts(dataset, [qis], memory_budget=memory_budget, on_progress=on_progress)
    hierarchies_, codes = [], []
    for name in qis:
        code, values, has_null = value_codes(snapshot[name])
        hierarchies_.append(build(name, values, has_null, specs.get(name)))
        codes.append(code)
    lattice = Lattice(hierarchies_, codes, snapshot[COUNT].to_numpy())
    limit = math.floor(max_suppression * lattice.rows + 1e-9)
    found = search(lattice, k, limit, metric, max_nodes)
    best = found.best
    report = GeneralizationReport(
        quasi_identifiers=qis, k=k, max_suppression=float(max_suppression), metric=metric,
        search="exact global recoding over the hierarchy lattice, branch and bound on monotone "
               "lower bounds, rows of classes below k suppressed",
        levels=dict(zip(qis, best.levels, strict=True)),
        changes=_changes(lattice, best.levels), rows=lattice.rows,
        rows_suppressed=best.rows_suppressed,
        suppressed_share=best.rows_suppressed / lattice.rows if lattice.rows else 0.0,
        k_achieved=best.k_achieved, classes=best.classes, discernibility=best.discernibility,
        loss=best.loss, naive=_summary(found.naive, qis, lattice.rows), lattice_nodes=lattice.size,
        nodes_evaluated=found.evaluated, nodes_pruned=found.pruned,
        hierarchies={h.column: h.steps for h in hierarchies_})
    out = dataset.map_batches(_Recoder(lattice, best.levels, k, qis))
    report.seconds = time.perf_counter() - started
    return Generalization(out, report)


def _changes(lattice: Lattice, levels: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for h, level in zip(lattice.hierarchies, levels, strict=True):
        rows.append({"column": h.column, "level": int(level), "top": h.top, "change": h.steps[level],
                     "distinct_before": len(h.labels[0]), "distinct_after": len(h.labels[level])})
    return rows


def _summary(node: NodeResult, qis: Sequence[str], rows: int) -> dict[str, Any]:
    return {"levels": dict(zip(qis, node.levels, strict=True)), "discernibility": node.discernibility,
            "loss": node.loss, "rows_suppressed": node.rows_suppressed,
            "suppressed_share": node.rows_suppressed / rows if rows else 0.0,
            "k_achieved": node.k_achieved, "classes": node.classes}


class _Recoder:
    """The batch function writing the chosen node: labels in place of values, rows of classes
    below k removed. Classes are keyed like the snapshot's, so batches agree with the search."""

    def __init__(self, lattice: Lattice, levels: Sequence[int], k: int, qis: Sequence[str]) -> None:
        self.hierarchies = lattice.hierarchies
        self.levels = list(levels)
        self.qis = list(qis)
        codes, sizes = lattice.generalised(levels)
        self.keyer = Keyer(codes, sizes)
        cls, size = lattice.classes(levels)
        self.small = np.unique(self.keyer.keys[size[cls] < k])
        self.labels = [pa.array(h.labels[lv], type=pa.string()) if lv else None
                       for h, lv in zip(self.hierarchies, self.levels, strict=True)]

    def _codes(self, h: Hierarchy, column: pa.ChunkedArray) -> np.ndarray:
        column = column.combine_chunks()
        values = h.values
        index = pc.index_in(column if column.type == values.type else pc.cast(column, values.type),
                            value_set=values)
        lost = pc.sum(pc.and_(pc.is_null(index), pc.is_valid(column))).as_py() or 0
        if lost:
            raise SchemaError(f"column {h.column!r} holds values the counting pass did not see; the "
                              "data changed between the two passes over it (read it again)")
        return index.fill_null(len(values)).to_numpy(zero_copy_only=False).astype(np.int64)

    def __call__(self, table: pa.Table) -> pa.Table:
        if table.num_rows == 0:
            return self._relabel(table, [np.zeros(0, np.int64)] * len(self.qis))
        codes = [h.codes[lv][self._codes(h, table[name])]
                 for h, lv, name in zip(self.hierarchies, self.levels, self.qis, strict=True)]
        keep = ~np.isin(self.keyer(codes), self.small)
        table = table.filter(pa.array(keep))
        return self._relabel(table, [c[keep] for c in codes])

    def _relabel(self, table: pa.Table, codes: list[np.ndarray]) -> pa.Table:
        for name, labels, code in zip(self.qis, self.labels, codes, strict=True):
            if labels is None:
                continue
            index = table.schema.get_field_index(name)
            table = table.set_column(index, pa.field(name, pa.string()), labels.take(pa.array(code)))
        return table
