"""Gaussian copula on Adult: datakiln against SDV's GaussianCopulaSynthesizer, same run.

Fit seconds, sampling speed (1,000,000 rows), fidelity (datakiln.evaluate and SDMetrics'
QualityReport on the same 32,561 sampled rows), and ML utility: a HistGradientBoosting
model trained on the synthetic rows and tested on the real Adult test split (ROC AUC and
F1 of ">50K"). SDV is used here for comparison only (the ``bench`` extra); it is never a
dependency of datakiln.

    python benchmarks/synth_copula.py [--repeat 3] [--sdv-sample-rows 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import ADULT_COLUMNS, ADULT_TRAIN  # noqa: E402

import datakiln  # noqa: E402
from datakiln.synth import GaussianCopula  # noqa: E402


def timed(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def sdmetrics_score(real: pa.Table, synthetic: pa.Table, roles: dict[str, str]) -> float:
    from sdmetrics.reports.single_table.quality_report import QualityReport

    sdtypes = {"continuous": "numerical", "discrete": "categorical"}
    metadata = {"columns": {name: {"sdtype": sdtypes[role]} for name, role in roles.items()}}
    report = QualityReport()
    report.generate(real.to_pandas(), synthetic.to_pandas(), metadata, verbose=False)
    return report.get_score()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample-rows", type=int, default=1_000_000)
    parser.add_argument("--sdv-sample-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    train = datakiln.read(ADULT_TRAIN, names=ADULT_COLUMNS).to_arrow()
    test = datakiln.read(ADULT_TRAIN.with_name("adult-test.csv"), names=ADULT_COLUMNS).to_arrow()
    test = test.set_column(14, "income", pc.replace_substring(test["income"], ".", ""))
    results = {}

    fit_s, model = timed(lambda: GaussianCopula().fit(train), args.repeat)
    sample_s, _ = timed(lambda: model.sample(args.sample_rows, seed=0), args.repeat)
    ours = model.sample(train.num_rows, seed=1)
    results["datakiln GaussianCopula"] = (fit_s, args.sample_rows / sample_s, ours)

    try:
        from sdv.metadata import Metadata
        from sdv.single_table import GaussianCopulaSynthesizer
    except ImportError:
        print("SDV is not installed (pip install -e '.[bench]'): datakiln only")
    else:
        frame = train.to_pandas()
        metadata = Metadata.detect_from_dataframes({"adult": frame})

        def fit_sdv():
            synthesizer = GaussianCopulaSynthesizer(metadata)
            synthesizer.fit({"adult": frame})
            return synthesizer

        sdv_fit_s, sdv = timed(fit_sdv, 1)
        sdv_sample_s, _ = timed(lambda: sdv.sample(args.sdv_sample_rows), 1)
        sampled = sdv.sample(train.num_rows)
        sampled = sampled["adult"] if isinstance(sampled, dict) else sampled  # SDV 2 returns {table: frame}
        sdv_rows = pa.Table.from_pandas(sampled, preserve_index=False).cast(train.schema)
        results["SDV GaussianCopulaSynthesizer"] = (sdv_fit_s, args.sdv_sample_rows / sdv_sample_s, sdv_rows)

    print(f"Adult train ({train.num_rows:,} rows × 15 columns); sampling {args.sample_rows:,} rows; "
          f"utility: HistGradientBoosting trained on 32,561 synthetic rows, tested on the real test split\n")
    header = (f"| {'synthesizer':30} | {'fit s':>6} | {'sample rows/s':>13} | {'shapes':>6} | {'pairs':>6} | "
              f"{'score':>6} | {'SDMetrics':>9} | {'ROC AUC':>7} | {'F1 >50K':>7} |")
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    scores = {}
    for name, (fit, speed, rows) in results.items():
        report = datakiln.evaluate(train, rows, holdout=test, target="income", privacy=False, detection=False)
        roles = {c["column"]: c["role"] for c in report.fidelity["columns"]}
        sdm = sdmetrics_score(train, rows, roles)
        utility = report.utility["synthetic"]
        scores[name] = (fit, speed, report.fidelity["score"])
        print(f"| {name:30} | {fit:6.2f} | {speed:13,.0f} | {report.fidelity['column_shapes']:6.3f} | "
              f"{report.fidelity['column_pair_trends']:6.3f} | {report.fidelity['score']:6.3f} | "
              f"{sdm:9.3f} | "
              f"{utility['roc_auc']:7.3f} | {utility['minority_f1']:7.3f} |")
        real = report.utility["real"]
    blank = " | ".join(f"{'':>{w}}" for w in (6, 13, 6, 6, 6, 9))
    print(f"| {'(real data, for reference)':30} | {blank} | "
          f"{real['roc_auc']:7.3f} | {real['minority_f1']:7.3f} |")
    if len(scores) == 2:
        (fit, speed, quality), (sdv_fit, sdv_speed, sdv_quality) = scores.values()
        print(f"\ndatakiln vs SDV GaussianCopula: fit {sdv_fit / fit:.1f}x faster, sampling "
              f"{speed / sdv_speed:.1f}x faster, quality {quality:.3f} vs {sdv_quality:.3f}")


if __name__ == "__main__":
    main()
