"""Gaussian copula on Adult: datakiln against SDV's GaussianCopulaSynthesizer, cold against cold.

Fit seconds, sampling speed (1,000,000 rows), fidelity (datakiln.evaluate and SDMetrics'
QualityReport on the same 32,561 sampled rows), and ML utility: a HistGradientBoosting
model trained on the synthetic rows and tested on the real Adult test split (ROC AUC and
F1 of ">50K"). SDV is used here for comparison only (the ``bench`` extra); it is never a
dependency of datakiln.

Equal work: every contestant runs in a fresh Python process with fresh objects (no cache
filled by an earlier run), and the input files are read once beforehand so the OS page
cache is equally warm for all. Each process reads the CSV (untimed), then times its first
fit and its first sample of ``--sample-rows`` rows; ``--repeat`` runs that many fresh
processes per contestant and reports the median. Peak RSS is the child's own
(``resource.getrusage``). datakiln samples on one thread per core; SDV on one.

    python benchmarks/synth_copula.py [--repeat 1] [--sample-rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import ADULT_COLUMNS, ADULT_TRAIN  # noqa: E402

import datakiln  # noqa: E402

CONTESTANTS = {"datakiln": "datakiln GaussianCopula", "sdv": "SDV GaussianCopulaSynthesizer"}


def _train() -> pa.Table:
    return datakiln.read(ADULT_TRAIN, names=ADULT_COLUMNS).to_arrow()


def child(which: str, sample_rows: int, out: Path) -> None:
    """One cold run in this fresh process: fit, first sample, then the rows for the evaluation."""
    warnings.filterwarnings("ignore")
    if which == "datakiln":
        from datakiln.synth import GaussianCopula

        train = _train()
        started = time.perf_counter()
        model = GaussianCopula().fit(train)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        model.sample(sample_rows, seed=0)
        sample_s = time.perf_counter() - started
        rows = model.sample(train.num_rows, seed=1)
    else:
        from sdv.metadata import Metadata
        from sdv.single_table import GaussianCopulaSynthesizer

        train = _train()
        frame = train.to_pandas()
        started = time.perf_counter()
        metadata = Metadata.detect_from_dataframes({"adult": frame})
        synthesizer = GaussianCopulaSynthesizer(metadata)
        synthesizer.fit({"adult": frame})
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        synthesizer.sample(sample_rows)
        sample_s = time.perf_counter() - started
        sampled = synthesizer.sample(train.num_rows)
        sampled = sampled["adult"] if isinstance(sampled, dict) else sampled  # SDV 2 returns {table: frame}
        rows = pa.Table.from_pandas(sampled, preserve_index=False).cast(train.schema)
    pq.write_table(rows, out)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"fit_s": fit_s, "sample_s": sample_s, "peak_mb": peak_mb}))


def cold_run(which: str, sample_rows: int, out: Path) -> dict[str, float]:
    """Run :func:`child` in a fresh interpreter; its JSON line back."""
    done = subprocess.run([sys.executable, __file__, "--child", which, "--sample-rows", str(sample_rows),
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{which} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def sdmetrics_score(real: pa.Table, synthetic: pa.Table, roles: dict[str, str]) -> float:
    from sdmetrics.reports.single_table.quality_report import QualityReport

    sdtypes = {"continuous": "numerical", "discrete": "categorical"}
    metadata = {"columns": {name: {"sdtype": sdtypes[role]} for name, role in roles.items()}}
    report = QualityReport()
    report.generate(real.to_pandas(), synthetic.to_pandas(), metadata, verbose=False)
    return report.get_score()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1, help="fresh processes per contestant (median)")
    parser.add_argument("--sample-rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=sorted(CONTESTANTS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.sample_rows, args.out)
        return
    warnings.filterwarnings("ignore")
    test_path = ADULT_TRAIN.with_name("adult-test.csv")
    for path in (ADULT_TRAIN, test_path):  # the page cache equally warm for every contestant
        path.read_bytes()
    try:
        import sdmetrics  # noqa: F401
        import sdv  # noqa: F401
    except ImportError:
        contestants = ["datakiln"]
        print("SDV/SDMetrics are not installed (pip install -e '.[bench]'): datakiln only")
    else:
        contestants = ["datakiln", "sdv"]
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for which in contestants:
            runs = [cold_run(which, args.sample_rows, Path(folder) / f"{which}-{i}.parquet")
                    for i in range(args.repeat)]
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            rows = pq.read_table(Path(folder) / f"{which}-0.parquet")
            results[CONTESTANTS[which]] = (median, rows)
        train = _train()
        test = datakiln.read(test_path, names=ADULT_COLUMNS).to_arrow()
        test = test.set_column(14, "income", pc.replace_substring(test["income"], ".", ""))
        print(f"Adult train ({train.num_rows:,} rows × 15 columns); cold runs: each contestant in a fresh "
              f"process with fresh objects, input files read once beforehand (page cache equally warm), "
              f"median of {args.repeat} process(es); sampling {args.sample_rows:,} rows; utility: "
              f"HistGradientBoosting trained on {train.num_rows:,} synthetic rows, tested on the real test "
              f"split; {os.cpu_count()} cores\n")
        header = (f"| {'synthesizer':30} | {'fit s':>6} | {'sample rows/s':>13} | {'peak MB':>7} | "
                  f"{'shapes':>6} | {'pairs':>6} | {'score':>6} | {'SDMetrics':>9} | {'ROC AUC':>7} | "
                  f"{'F1 >50K':>7} |")
        print(header)
        print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
        scores = {}
        real = None
        for name, (run, rows) in results.items():
            report = datakiln.evaluate(train, rows, holdout=test, target="income", privacy=False,
                                       detection=False)
            roles = {c["column"]: c["role"] for c in report.fidelity["columns"]}
            quality = sdmetrics_score(train, rows, roles) if len(contestants) == 2 else float("nan")
            utility = report.utility["synthetic"]
            speed = args.sample_rows / run["sample_s"]
            scores[name] = (run["fit_s"], speed, report.fidelity["score"])
            print(f"| {name:30} | {run['fit_s']:6.2f} | {speed:13,.0f} | {run['peak_mb']:7,.0f} | "
                  f"{report.fidelity['column_shapes']:6.3f} | {report.fidelity['column_pair_trends']:6.3f} | "
                  f"{report.fidelity['score']:6.3f} | {quality:9.3f} | "
                  f"{utility['roc_auc']:7.3f} | {utility['minority_f1']:7.3f} |")
            real = report.utility["real"]
        blank = " | ".join(f"{'':>{w}}" for w in (6, 13, 7, 6, 6, 6, 9))
        print(f"| {'(real data, for reference)':30} | {blank} | "
              f"{real['roc_auc']:7.3f} | {real['minority_f1']:7.3f} |")
    if len(scores) == 2:
        (fit, speed, quality), (sdv_fit, sdv_speed, sdv_quality) = scores.values()
        print(f"\ndatakiln vs SDV GaussianCopula (cold vs cold): fit {sdv_fit / fit:.1f}x faster, sampling "
              f"{speed / sdv_speed:.1f}x faster, quality {quality:.3f} vs {sdv_quality:.3f}")


if __name__ == "__main__":
    main()
