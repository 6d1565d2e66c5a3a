"""Privacy risk: how close synthetic rows come to the real rows they were learned from.

- **exact copies**: the share of all synthetic rows equal to some training row in *every*
  column the two tables share (``exact_copy_columns``) except identifiers and PII, which
  synthesizers regenerate or fake by design (keeping them in the hash would hide a memorised
  row behind its new id); free text is hashed exactly as it is (64-bit row hashes, streamed;
  a holdout's own share is the baseline). A synthetic row that keeps a real label but has a
  new message is not a copy.
- **verbatim values** (``text_copies``): per free-text, identifier and PII column, the share
  of synthetic values equal to a training value of that column, with a holdout's share as
  the baseline: a real e-mail address or message in a synthetic row is a leak whatever the
  other columns say.
- **distance to closest record** (DCR): for sampled synthetic rows and holdout rows, the
  distance to the nearest training row (Gower-like: numbers scaled to the real range, a
  category mismatch counts 1) over the compared columns only (``distance_columns``):
  identifiers, PII and free text have no meaningful distance here and are left out, so a
  DCR of 0 means "equal on the compared columns", not "a copy" (the exact-copy rate and
  the text check say that). ``dcr_share_closer_than_holdout`` is the share of synthetic
  rows closer to the training data than the holdout's median DCR: about 0.5 when the
  synthetic rows are no closer than unseen real rows, towards 1 when they copy.
- **nearest-neighbour distance ratio** (NNDR): closest / second-closest training distance
  (same columns as DCR).
- **membership inference**: an attacker scores candidate rows by their distance (same
  columns as DCR) to the nearest synthetic row; the AUC of telling training rows from
  holdout rows (0.5: no signal).
- **free-text copies**: for every text column (which the distance checks leave out), the
  share of synthetic non-null values equal to a training value verbatim (a holdout's share
  is the baseline); a column above 1% (and twice the baseline) is flagged. Beside it the
  **8-gram copy check** (:mod:`datakiln.evaluation._ngram_overlap`): the share of synthetic
  word 8-grams found in the training text against the holdout's share, flagged 5 points
  above it (shown, never flagged, without a holdout: templated real text shares 8-grams).
- **tiny training tables**: below :data:`~datakiln.synth.base.MIN_TRAINING_ROWS` rows a
  synthesizer mostly replays its input, so the section says copies are expected.

These are heuristics: passing them is no guarantee of privacy (that takes a mechanism
with a proof, such as differential privacy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from datakiln.clean.base import row_hashes
from datakiln.dataset.dataset import Dataset
from datakiln.evaluation._columns import RowEncoder
from datakiln.evaluation._ngram_overlap import ngram_overlap
from datakiln.evaluation._stats import bootstrap_interval, proportion_interval, take_rows
from datakiln.synth.base import MIN_TRAINING_ROWS

__all__ = ["copy_columns", "exact_copies", "privacy_risk", "row_copies", "text_copies", "training_hashes"]

NOTICE = ("Distance-based checks are heuristics: passing them is no proof of privacy. Only a "
          "mechanism with a guarantee (e.g. differential privacy) bounds what can be learned.")
DCR_BINS = 30
MIN_ATTACK_ROWS = 20  # fewer holdout rows than this make no membership attack


def training_hashes(dataset: Dataset, columns: list[str], memory_budget: int | None) -> np.ndarray:
    """Sorted distinct row hashes of the training data over ``columns`` (8 bytes a row)."""
    parts = list(dataset.select(columns)._tables(lambda t: np.unique(row_hashes(t, columns)),
                                                 memory_budget=memory_budget))
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)


def exact_copies(dataset: Dataset, columns: list[str], train: np.ndarray, memory_budget: int | None,
                 on_progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """(rows of ``dataset`` equal to a training row, rows) over ``columns``."""
    copies = rows = 0
    for hit, n in dataset.select(columns)._tables(
            lambda t: (int(np.isin(row_hashes(t, columns), train).sum()), t.num_rows),
            memory_budget=memory_budget):
        copies, rows = copies + hit, rows + n
        if on_progress is not None:
            on_progress(n)
    return copies, rows


def copy_columns(real: Dataset, synthetic: Dataset, regenerated: Sequence[str] = ()) -> list[str]:
    """The columns the synthetic data shares with the real data, in the real order, less
    ``regenerated`` (identifier and PII columns, checked value by value instead).

    The exact-copy check hashes all of them (free text included), so a row counts as a copy
    only when every one of these values matches.
    """
    return [name for name in real.columns if name in synthetic.columns and name not in regenerated]


def row_copies(real: Dataset, synthetic: Dataset, holdout: Dataset | None, memory_budget: int | None,
               on_progress: Callable[[int], None] | None = None, regenerated: Sequence[str] = (),
               ) -> tuple[list[str], tuple[int, int], tuple[int, int] | None]:
    """Exact row copies over :func:`copy_columns`: (columns, synthetic copies, holdout copies).

    Copies are ``(rows equal to a training row, rows)``; the holdout's (``None`` without a
    holdout, or one lacking a shared column) is the baseline: real rows repeat too.
    """
    columns = copy_columns(real, synthetic, regenerated)
    train = training_hashes(real, columns, memory_budget)
    copies = exact_copies(synthetic, columns, train, memory_budget, on_progress)
    held = None
    if holdout is not None and all(name in holdout.columns for name in columns):
        held = exact_copies(holdout, columns, train, memory_budget)
    return columns, copies, held


def _value_hashes(table: pa.Table, name: str) -> np.ndarray:
    """64-bit hashes of the non-null values of one column."""
    present = table.filter(pc.is_valid(table[name]))
    return row_hashes(present, [name]) if present.num_rows else np.zeros(0, dtype=np.uint64)


def _copied_values(dataset: Dataset, name: str, train: np.ndarray,
                   memory_budget: int | None) -> tuple[int, int]:
    """(non-null values of ``name`` whose hash is in ``train``, non-null values)."""

    def batch(table: pa.Table) -> tuple[int, int]:
        hashes = _value_hashes(table, name)
        return int(np.isin(hashes, train).sum()), len(hashes)

    hits = values = 0
    for found, total in dataset.select([name])._tables(batch, memory_budget=memory_budget):
        hits, values = hits + found, values + total
    return hits, values


def text_copies(real: Dataset, synthetic: Dataset, columns: list[str] | dict[str, str],
                memory_budget: int | None, holdout: Dataset | None = None) -> dict[str, dict[str, Any]]:
    """Per free-text, identifier or PII column: non-null values of ``synthetic`` equal to a
    training value of that column verbatim.

    ``columns`` is a list of names or ``{name: kind}``. Returns
    ``{column: {"kind", "copies", "values", "share", "holdout_share"}}`` (the holdout's
    share of values found in the training data is the baseline: real messages repeat too).
    Columns the synthetic data lacks (a synthesizer with ``text="drop"``) are skipped.
    """
    kinds = dict(columns) if isinstance(columns, dict) else dict.fromkeys(columns, "text")
    out: dict[str, dict[str, Any]] = {}
    for name, kind in kinds.items():
        if name not in synthetic.columns:
            continue
        parts = list(real.select([name])._tables(lambda t, n=name: np.unique(_value_hashes(t, n)),
                                                 memory_budget=memory_budget))
        train = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)
        copies, values = _copied_values(synthetic, name, train, memory_budget)
        baseline = None
        if holdout is not None and name in holdout.columns:
            held, held_values = _copied_values(holdout, name, train, memory_budget)
            baseline = held / held_values if held_values else None
        out[name] = {"kind": kind, "copies": copies, "values": values,
                     "share": copies / values if values else 0.0, "holdout_share": baseline}
        if kind == "text":  # long runs of training words stitched together (evaluation/_ngram_overlap.py)
            out[name].update(ngram_overlap(real, synthetic, name, memory_budget, holdout))
    return out


def _nearest(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(reference))
    finder = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(reference)
    distances, _ = finder.kneighbors(queries)
    return distances


def _median_ratio(distances: np.ndarray) -> float:
    """Median of closest / second-closest distance (0 where both are 0: a duplicate)."""
    second = distances[:, -1]
    return float(np.median(np.where(second > 0, distances[:, 0] / np.maximum(second, 1e-12), 0.0)))


def _histogram(values: dict[str, np.ndarray]) -> dict[str, Any]:
    pooled = np.concatenate([v for v in values.values() if v.size])
    top = float(np.quantile(pooled, 0.99)) if pooled.size else 1.0
    edges = np.linspace(0, max(top, 1e-9), DCR_BINS + 1)
    out: dict[str, Any] = {"edges": edges.tolist()}
    for name, v in values.items():
        counts = np.bincount(np.clip(np.searchsorted(edges, v, side="right") - 1, 0, DCR_BINS - 1),
                             minlength=DCR_BINS)
        out[name] = (counts / max(len(v), 1)).tolist()
    return out


def privacy_risk(encoder: RowEncoder, train: pa.Table, synthetic: pa.Table, holdout: pa.Table | None,
                 copies: tuple[int, int], holdout_copies: tuple[int, int] | None, *,
                 rows: int = 5_000, seed: int = 0, text: dict[str, dict[str, Any]] | None = None,
                 training_rows: int | None = None, copy_columns: list[str] | None = None) -> dict[str, Any]:
    """The privacy section from row samples of train, synthetic and (optional) holdout.

    ``copies`` / ``holdout_copies`` come from :func:`row_copies` over ``copy_columns``
    (default: the encoder's columns); distances use the encoder's (compared) columns.
    ``text`` is :func:`text_copies`' result; ``training_rows`` the size of the whole
    training table (default: the sample's), below ``MIN_TRAINING_ROWS`` flagged as tiny.
    """
    rng = np.random.default_rng([seed, 17])
    reference = encoder.embedding(train)
    queries = encoder.embedding(take_rows(synthetic, rows, rng))
    synth_distances = _nearest(reference, queries, 2)
    dcr = synth_distances[:, 0]
    copy_rate = copies[0] / copies[1] if copies[1] else None
    out: dict[str, Any] = {
        "exact_copy_rate": copy_rate, "exact_copy_interval": proportion_interval(*copies),
        "exact_copies": copies[0], "synthetic_rows_checked": copies[1],
        "dcr_synthetic_median": float(np.median(dcr)),
        "nndr_synthetic_median": _median_ratio(synth_distances),
        "train_rows": train.num_rows, "query_rows": len(queries), "notice": NOTICE,
        "training_rows": train.num_rows if training_rows is None else int(training_rows),
        "text_copies": dict(text or {}),
        "exact_copy_columns": list(encoder.columns if copy_columns is None else copy_columns),
        "distance_columns": list(encoder.columns),
    }
    out["small_training"] = out["training_rows"] < MIN_TRAINING_ROWS
    histograms = {"synthetic": dcr}
    if holdout is not None and holdout.num_rows:
        members = take_rows(holdout, rows, rng)
        holdout_distances = _nearest(reference, encoder.embedding(members), 2)
        dcr_holdout = holdout_distances[:, 0]
        median = float(np.median(dcr_holdout))
        closer = int((dcr < median).sum())
        out.update({
            "dcr_holdout_median": median,
            "dcr_share_closer_than_holdout": closer / len(dcr),
            "dcr_share_interval": proportion_interval(closer, len(dcr)),
            "nndr_holdout_median": _median_ratio(holdout_distances),
            "holdout_exact_copy_rate": (holdout_copies[0] / holdout_copies[1]
                                        if holdout_copies and holdout_copies[1] else None),
        })
        out.update(_membership(encoder, train, members, synthetic, rng, rows))
        histograms["holdout"] = dcr_holdout
    out["dcr_histogram"] = _histogram(histograms)
    out["flags"] = _flags(out)
    out["flagged"] = bool(out["flags"])
    return out


def _membership(encoder: RowEncoder, train: pa.Table, holdout: pa.Table, synthetic: pa.Table,
                rng: np.random.Generator, rows: int) -> dict[str, Any]:
    """Distance-to-synthetic attack: AUC of telling training rows from holdout rows."""
    size = min(train.num_rows, holdout.num_rows, rows)
    if size < MIN_ATTACK_ROWS:
        return {"membership_auc": None, "membership_interval": None, "membership_rows": 2 * size}
    members = encoder.embedding(take_rows(train, size, rng))
    outsiders = encoder.embedding(take_rows(holdout, size, rng))
    reference = encoder.embedding(synthetic)  # the whole synthetic sample
    distances = _nearest(reference, np.vstack([members, outsiders]), 1)[:, 0]
    labels = np.r_[np.ones(len(members)), np.zeros(len(outsiders))]
    score = -distances

    def auc(index: np.ndarray) -> float:
        return roc_auc_score(labels[index], score[index])

    value = float(auc(np.arange(len(labels))))
    return {"membership_auc": value, "membership_interval": bootstrap_interval(auc, len(labels), rng),
            "membership_rows": int(len(labels))}


HOLDOUT_OVERLAP = 0.5  # a holdout sharing this share of its rows with the training data


def _flags(result: dict[str, Any]) -> list[str]:
    """Plain-language warnings where a metric points at leakage."""
    flags = []
    if result.get("small_training"):
        flags.append(f"the training table has only {result['training_rows']} rows (fewer than "
                     f"{MIN_TRAINING_ROWS}): a synthesizer fitted on so few rows replays them, so exact "
                     f"copies are expected; do not share these synthetic rows as private")
    for name, found in result.get("text_copies", {}).items():
        text_baseline = found.get("holdout_share") or 0.0
        found["flagged"] = found["share"] > max(0.01, 2 * text_baseline)
        if found["flagged"]:
            flags.append(f"{found['share']:.1%} of the synthetic values of {found.get('kind', 'text')} "
                         f"column {name!r} are verbatim training values (a holdout's rate: "
                         f"{text_baseline:.1%})")
        grams, held = found.get("ngram8_share"), found.get("ngram8_holdout_share")
        if grams is not None and held is not None:  # templated real text shares 8-grams: judged
            found["ngram8_flagged"] = grams > held + 0.05  # against the holdout only, never alone
            if found["ngram8_flagged"]:
                flags.append(f"{grams:.1%} of the synthetic word 8-grams of text column {name!r} occur in "
                             f"the training text (a holdout's share: {held:.1%}): passages are memorised")
    baseline = result.get("holdout_exact_copy_rate") or 0.0
    if baseline >= HOLDOUT_OVERLAP:
        flags.append(f"{baseline:.1%} of the holdout rows are also training rows: a holdout drawn "
                     "from the training data makes copies look expected and distances look safe "
                     "(its baselines are void); use real rows the generator never saw")
    rate = result.get("exact_copy_rate") or 0.0
    shared = result.get("exact_copy_columns") or []
    if rate > max(0.01, 2 * baseline):
        flags.append(f"{rate:.1%} of synthetic rows are exact copies of training rows (equal in all "
                     f"{len(shared)} shared columns; a holdout's rate: {baseline:.1%})")
    left_out = [name for name in shared if name not in (result.get("distance_columns") or shared)]
    scope = f" on the compared columns ({_names(left_out)} left out)" if left_out else ""
    share = result.get("dcr_share_closer_than_holdout")
    if share is not None and share > 0.6:
        flags.append(f"{share:.0%} of synthetic rows are closer to the training data than the median "
                     f"holdout row{scope} (about 50% expected)")
    membership = result.get("membership_auc")
    if membership is not None and membership > 0.6:
        flags.append(f"a distance-based membership attack{scope} reaches AUC {membership:.2f} "
                     f"(0.5: no signal)")
    return flags


def _names(columns: list[str], shown: int = 3) -> str:
    """The first few names quoted, then a count of the rest."""
    named = ", ".join(repr(c) for c in columns[:shown])
    return named + (f" and {len(columns) - shown} more" if len(columns) > shown else "")
