"""The generalisation lattice: every combination of per-attribute hierarchy levels, searched
for the one of least information loss that is k-anonymous after suppressing at most a given
number of rows.

Nodes are evaluated on a *snapshot*: the row count of each distinct combination of the
quasi-identifiers (gathered once, streaming). Generalising a node maps each distinct value to
its label index and re-groups the snapshot (ARX's roll-up idea), so no node reads the data.

The search is exact (the optimum of the lattice) and prunes with monotonicity. Both loss
metrics have a lower bound that only grows up the lattice — the discernibility metric's
``sum |class|^2`` before suppression (a suppressed row costs ``N >= |class|``), and the loss
metric's loss before suppression (a suppressed cell costs 1, the most a cell can) — so once a
node's bound reaches the best loss found, it and every node above it are skipped
(branch and bound, the nodes taken bottom-up by height). The k-check itself is monotone too:
a node above a k-anonymous one is k-anonymous (classes only merge).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from datakiln.errors import InvalidArgumentError
from datakiln.privacy._hierarchy import Hierarchy

METRICS = ("discernibility", "loss")


@dataclass
class NodeResult:
    """One evaluated node: its levels, whether it holds, suppression, and both loss metrics."""

    levels: tuple[int, ...]
    holds: bool
    rows_suppressed: int
    classes: int
    k_achieved: int
    discernibility: float
    loss: float

    def value(self, metric: str) -> float:
        return self.discernibility if metric == "discernibility" else self.loss


class Keyer:
    """Equal int64 keys for equal code tuples, reproducible on new rows whose tuples occur in
    the rows it was built from (mixed radix, re-numbered through the built rows' prefixes
    whenever the radix product would overflow)."""

    def __init__(self, codes: Sequence[np.ndarray], sizes: Sequence[int]) -> None:
        self.sizes = [max(int(s), 1) for s in sizes]
        self.steps: list[np.ndarray | None] = []
        key = np.zeros(len(codes[0]), dtype=np.int64)
        span = 1
        for code, size in zip(codes, self.sizes, strict=True):
            if span * size >= 2**62:
                uniq, key = np.unique(key, return_inverse=True)
                self.steps.append(uniq)
                span = max(len(uniq), 1)
            else:
                self.steps.append(None)
            key = key * size + code
            span *= size
        self.keys = key

    def __call__(self, codes: Sequence[np.ndarray]) -> np.ndarray:
        key = np.zeros(len(codes[0]), dtype=np.int64)
        for code, size, uniq in zip(codes, self.sizes, self.steps, strict=True):
            if uniq is not None:
                key = np.searchsorted(uniq, key)
            key = key * size + code
        return key


class Lattice:
    """The snapshot (distinct combinations and their counts) with one hierarchy per attribute."""

    def __init__(self, hierarchies: Sequence[Hierarchy], codes: Sequence[np.ndarray],
                 counts: np.ndarray) -> None:
        self.hierarchies = list(hierarchies)
        self.codes = list(codes)
        self.counts = counts.astype(np.float64)
        self.rows = int(counts.sum())
        self.tops = [h.top for h in self.hierarchies]

    @property
    def size(self) -> int:
        return int(np.prod([t + 1 for t in self.tops]))

    def generalised(self, levels: Sequence[int]) -> tuple[list[np.ndarray], list[int]]:
        codes = [h.codes[lv][c] for h, lv, c in zip(self.hierarchies, levels, self.codes, strict=True)]
        return codes, [len(h.labels[lv]) for h, lv in zip(self.hierarchies, levels, strict=True)]

    def cell_loss(self, levels: Sequence[int]) -> np.ndarray:
        """Mean loss over the attributes of each snapshot row at ``levels``."""
        total = np.zeros(len(self.counts))
        for h, lv, c in zip(self.hierarchies, levels, self.codes, strict=True):
            total += h.loss[lv][c]
        return total / len(self.hierarchies)

    def loss_bound(self, levels: Sequence[int]) -> float:
        """The loss metric without suppression: a lower bound that grows up the lattice."""
        return float((self.cell_loss(levels) * self.counts).sum() / self.rows) if self.rows else 0.0

    def classes(self, levels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Class index of each snapshot row at ``levels``, and the class sizes."""
        codes, sizes = self.generalised(levels)
        keys = Keyer(codes, sizes).keys
        _, cls = np.unique(keys, return_inverse=True)
        return cls, np.bincount(cls, weights=self.counts)

    def evaluate(self, levels: Sequence[int], k: int, limit: int) -> tuple[NodeResult, float]:
        """The node's result and its discernibility lower bound (before suppression)."""
        cls, size = self.classes(levels)
        small = size < k
        suppressed = int(size[small].sum())
        kept = size[~small]
        discernibility = float((kept ** 2).sum() + suppressed * self.rows)
        cells = self.cell_loss(levels) * self.counts
        loss = float((cells[~small[cls]].sum() + suppressed) / self.rows) if self.rows else 0.0
        result = NodeResult(tuple(levels), suppressed <= limit, suppressed, int(len(kept)),
                            int(kept.min()) if len(kept) else 0, discernibility, loss)
        return result, float((size ** 2).sum())


@dataclass
class SearchResult:
    best: NodeResult
    naive: NodeResult
    evaluated: int
    pruned: int


def _predecessors(node: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [node[:i] + (v - 1,) + node[i + 1:] for i, v in enumerate(node) if v > 0]


def search(lattice: Lattice, k: int, limit: int, metric: str, max_nodes: int) -> SearchResult:
    """The least-loss node holding k with at most ``limit`` suppressed rows, and the naive one."""
    if metric not in METRICS:
        raise InvalidArgumentError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    if lattice.size > max_nodes:
        raise InvalidArgumentError(
            f"the generalisation lattice has {lattice.size:,} nodes (levels per attribute "
            f"{[t + 1 for t in lattice.tops]}), more than max_nodes={max_nodes:,}; give fewer "
            "interval widths or hierarchy levels, or fewer quasi-identifiers")
    if lattice.rows < k:
        raise InvalidArgumentError(
            f"the table has {lattice.rows:,} rows, fewer than k={k}: no generalisation can make "
            "classes that large; lower k")
    nodes = sorted(itertools.product(*(range(t + 1) for t in lattice.tops)), key=lambda n: (sum(n), n))
    best: NodeResult | None = None
    pruned: set[tuple[int, ...]] = set()
    evaluated = skipped = 0
    for node in nodes:
        if best is not None:
            if any(p in pruned for p in _predecessors(node)) or (
                    metric == "loss" and lattice.loss_bound(node) >= best.loss):
                pruned.add(node)
                skipped += 1
                continue
        result, bound = lattice.evaluate(node, k, limit)
        evaluated += 1
        if result.holds and (best is None or result.value(metric) < best.value(metric)):
            best = result
        if best is not None and metric == "discernibility" and bound >= best.discernibility:
            pruned.add(node)
    assert best is not None  # the top node holds: one class of rows >= k
    return SearchResult(best, naive(lattice, k, limit), evaluated, skipped)


def naive(lattice: Lattice, k: int, limit: int) -> NodeResult:
    """Naive global recoding: every attribute one level up at a time (capped at its top)
    until k holds with at most ``limit`` suppressed rows."""
    for step in range(max(lattice.tops) + 1):
        levels = tuple(min(step, t) for t in lattice.tops)
        result, _ = lattice.evaluate(levels, k, limit)
        if result.holds:
            return result
    raise AssertionError("the top node always holds")  # pragma: no cover
