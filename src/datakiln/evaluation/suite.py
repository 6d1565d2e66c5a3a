"""``datakiln.evaluate``: fidelity, ML utility and privacy risk in one report.

The real, synthetic and holdout tables are streamed: one pass each for counts, ranges
and a uniform row sample (``sample_rows``), a second pass over real and synthetic for
histograms, contingency tables and correlations, and a hash pass for exact copies.
Detection, utility and privacy work on the stated samples and carry 95% intervals.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datakiln.dataset.dataset import Dataset, as_dataset
from datakiln.errors import EmptySourceError, InvalidArgumentError
from datakiln.evaluation._columns import RowEncoder, column_roles, jsonable
from datakiln.evaluation.detection import detection_auc
from datakiln.evaluation.fidelity import both, fidelity_scores, first_pass
from datakiln.evaluation.privacy import privacy_risk, row_copies, text_copies
from datakiln.evaluation.utility import ml_utility
from datakiln.io.write import report_marker, write_text_atomic
from datakiln.schema import refuse_nested
from datakiln.units import parse_bytes

__all__ = ["EvaluationReport", "evaluate"]
log = logging.getLogger(__name__)


@dataclass
class EvaluationReport:
    """Every score of an evaluation as plain data; ``to_json`` / ``to_html`` render it."""

    fidelity: dict[str, Any]
    utility: dict[str, Any] | None
    privacy: dict[str, Any] | None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``fidelity``, ``utility``, ``privacy``, ``info``)."""
        return jsonable(asdict(self))

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int = 2,
                overwrite: bool = False, inputs: Iterable[str | os.PathLike[str]] = ()) -> str:
        """The report as JSON text (first key ``"datakiln": {"kind": "evaluation-report",
        "version"}``); written atomically to ``path`` when given.

        An existing file at ``path`` is replaced only if it is a datakiln report or with
        ``overwrite=True``; a path among ``inputs`` (the evaluated files) is always refused
        with :class:`~datakiln.errors.OutputExistsError`.
        """
        text = json.dumps({**report_marker("evaluation-report"), **self.to_dict()}, indent=indent,
                          allow_nan=False)
        if path is not None:
            write_text_atomic(path, text, overwrite=overwrite, inputs=inputs)
        return text

    def to_html(self, path: str | os.PathLike[str], *, title: str = "datakiln evaluation",
                overwrite: bool = False, inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
        """Write a self-contained HTML report (no network needed to view it); returns the path.

        Replaces an existing file only as :meth:`to_json` does (datakiln's own report, or
        ``overwrite=True``; never one of ``inputs``).
        """
        from datakiln.report.html import render_report

        return write_text_atomic(path, render_report(self.to_dict(), title=title), overwrite=overwrite,
                                 inputs=inputs)

    def summary(self) -> dict[str, float | None]:
        """The headline numbers: fidelity score, detection AUC, utility ratio, privacy flags."""
        fidelity = self.fidelity
        out = {"fidelity": fidelity.get("score"), "column_shapes": fidelity.get("column_shapes"),
               "column_pair_trends": fidelity.get("column_pair_trends"),
               "detection_auc": fidelity.get("detection_auc"),
               "detection_score": fidelity.get("detection_score")}
        if self.utility:
            metric = self.utility["headline_metric"]
            out[f"utility_{metric}_real"] = (self.utility.get("real") or {}).get(metric)
            out[f"utility_{metric}_synthetic"] = (self.utility.get("synthetic") or {}).get(metric)
            fairness = (self.utility.get("synthetic") or {}).get("fairness")
            if fairness:
                out["synthetic_demographic_parity_difference"] = fairness["demographic_parity_difference"]
                out["synthetic_equalized_odds_difference"] = fairness["equalized_odds_difference"]
        if self.privacy:
            out["exact_copy_rate"] = self.privacy.get("exact_copy_rate")
            out["dcr_share_closer_than_holdout"] = self.privacy.get("dcr_share_closer_than_holdout")
            out["membership_auc"] = self.privacy.get("membership_auc")
        return out


def _as_input(data: Any, label: str) -> Dataset:
    if isinstance(data, (str, os.PathLike)):
        from datakiln.dataset.reading import read

        return read(data)
    return as_dataset(data, what=f"evaluate's {label} argument")


def evaluate(real: Any, synthetic: Any, *, holdout: Any = None, target: str | None = None,
             metadata: Mapping[str, str] | None = None, sample_rows: int | None = None, seed: int = 0,
             memory_budget: str | int | None = "1GB", detection: bool = True, privacy: bool = True,
             on_progress: Callable[[int], None] | None = None,
             sensitive: str | None = None) -> EvaluationReport:
    """Compare ``synthetic`` (or augmented) data with the ``real`` data it was made from.

    Parameters
    ----------
    real, synthetic, holdout : Dataset, Arrow table, pandas DataFrame or path
        The training data, the data to judge, and optionally real rows the generator never
        saw (for utility testing and privacy baselines).
    target : str, optional
        Column to predict for the utility section (skipped when ``None``).
    metadata : dict, optional
        ``{column: kind}`` overrides (datakiln kinds or SDV sdtypes); identifiers, PII and
        free text are not compared.
    sample_rows : int, optional
        Rows sampled from each table for detection, utility and privacy (default 50,000).
    seed : int
        Seed of every sample and model (default 0).
    memory_budget : str or int
        Budget of the streaming passes (default ``"1GB"``).
    on_progress : callable, optional
        Called with a row count as the passes advance.
    sensitive : str, optional
        A protected attribute (e.g. ``"sex"``; needs a classification ``target``): the utility
        section reports each model's demographic-parity and equalized-odds differences across
        its groups (``utility["synthetic"]["fairness"]`` for the TSTR model).

    Examples
    --------
    >>> report = datakiln.evaluate("train.parquet", synth, holdout="test.parquet",
    ...                            target="income")             # doctest: +SKIP
    >>> report.fidelity["score"], report.to_html("report.html")  # doctest: +SKIP
    """
    started = time.perf_counter()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise InvalidArgumentError(f"seed must be a whole number from 0 to 4294967295, got {seed!r}")
    rows = 50_000 if sample_rows is None else int(sample_rows)
    if rows < 10:
        raise InvalidArgumentError(f"sample_rows must be at least 10, got {sample_rows!r}")
    budget = parse_bytes(memory_budget)
    real_ds, synth_ds = _as_input(real, "real"), _as_input(synthetic, "synthetic")
    from datakiln.evaluation.images import evaluate_images, is_image_data

    if is_image_data(real_ds):  # images: Fréchet distance, KID, class fidelity, memorisation
        held = None if holdout is None else _as_input(holdout, "holdout")
        return evaluate_images(real_ds, synth_ds, holdout=held, seed=seed)  # type: ignore[return-value]
    for side, ds in (("real", real_ds), ("synthetic", synth_ds)):
        refuse_nested(ds.arrow_schema, f"evaluation (the {side} data)")
    holdout_ds = None if holdout is None else _as_input(holdout, "holdout")
    if holdout_ds is not None and holdout_ds.fingerprint == real_ds.fingerprint:
        raise InvalidArgumentError(
            f"the holdout {holdout_ds.source.name!r} is the training data (the same content as "
            "real): its rows make every copy look expected and every distance look safe; pass "
            "real rows the generator never saw (e.g. the test part of datakiln.split) or no holdout")
    others = [("synthetic", synth_ds)] + ([("holdout", holdout_ds)] if holdout_ds is not None else [])
    roles = column_roles(real_ds, others, metadata)
    if not roles.names:
        raise InvalidArgumentError(f"no column can be compared: all are identifiers, PII or text "
                                   f"({roles.skipped}); pass metadata to set kinds")
    names = roles.names
    # free text, identifiers and PII are checked value by value for verbatim copies
    verbatim = {n: kind for n, kind in roles.skipped.items()  # those every table kept
                if all(n in ds.columns for _, ds in others)}
    regenerated = [n for n, kind in verbatim.items() if kind != "text"]  # left out of row hashes
    whole = (real_ds, synth_ds, holdout_ds)
    real_ds, synth_ds = real_ds.select(names), synth_ds.select(names)
    holdout_ds = holdout_ds.select(names) if holdout_ds is not None else None
    real_first, synth_first = both(
        lambda pair: first_pass(pair[0], roles, rows, pair[1], budget, on_progress),
        (real_ds, seed), (synth_ds, seed + 1))
    for label, first in (("real", real_first), ("synthetic", synth_first)):
        if first.rows == 0:
            raise EmptySourceError(f"the {label} data has no rows; nothing to evaluate")
    fidelity = fidelity_scores(roles, real_ds, synth_ds, real_first, synth_first, budget, on_progress)
    for record in fidelity["columns"]:
        record["type"] = str(real_ds.arrow_schema.field(record["column"]).type)
    real_sample, synth_sample = real_first.sample.table, synth_first.sample.table
    encoder = RowEncoder(roles, real_sample)
    fidelity["detection_auc"] = fidelity["detection_interval"] = fidelity["detection_score"] = None
    if detection:
        result = detection_auc(encoder, real_sample, synth_sample, rows=min(rows, 20_000), seed=seed)
        fidelity["detection_auc"], fidelity["detection_interval"] = result["auc"], result["interval"]
        fidelity["detection_score"] = result["score"]
        fidelity["detection_score_interval"] = result["score_interval"]
        fidelity["detection_auc_measured"] = result["measured"]
        fidelity["detection_note"] = result["note"]
        fidelity["detection_rows"] = result["rows"]
    holdout_sample = None
    if holdout_ds is not None:
        holdout_first = first_pass(holdout_ds, roles, rows, seed + 2, budget, on_progress)
        holdout_sample = holdout_first.sample.table
    utility = None
    if target is not None:
        if target not in names:
            raise InvalidArgumentError(f"target {target!r} is not a compared column of the real data; "
                                       f"compared columns: {names}")
        utility = ml_utility(encoder, real_sample, synth_sample, holdout_sample, target, rows=rows, seed=seed,
                             sensitive=sensitive)
    elif sensitive is not None:
        raise InvalidArgumentError(f"sensitive={sensitive!r} scores the fairness of the utility models: "
                                   "pass target= as well")
    privacy_section = None
    if privacy:
        # a row is a copy only if every shared column matches, text included (not just `names`);
        # identifiers and PII, regenerated by synthesizers, are checked value by value instead
        shared, copies, holdout_copies = row_copies(*whole, budget, on_progress, regenerated)
        text = text_copies(whole[0], whole[1], verbatim, budget, holdout=whole[2])
        privacy_section = privacy_risk(encoder, real_sample, synth_sample, holdout_sample, copies,
                                       holdout_copies, rows=min(rows, 5_000), seed=seed, text=text,
                                       training_rows=real_first.rows, copy_columns=shared)
    info = {"real_rows": real_first.rows, "synthetic_rows": synth_first.rows,
            "holdout_rows": None if holdout_ds is None else holdout_first.rows,
            "sample_rows": rows, "seed": seed, "compared_columns": names, "skipped_columns": roles.skipped,
            "target": target, "seconds": time.perf_counter() - started}
    log.info("evaluated %s synthetic against %s real rows in %.1f s (fidelity %.3f)",
             f"{synth_first.rows:,}", f"{real_first.rows:,}", info["seconds"], fidelity["score"])
    return EvaluationReport(fidelity=fidelity, utility=utility, privacy=privacy_section, info=info)
