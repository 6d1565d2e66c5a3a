"""Gaussian copula on Adult: datakiln against SDV's GaussianCopulaSynthesizer, cold against cold.

Fit seconds, sampling speed (1,000,000 rows), fidelity (datakiln.evaluate and SDMetrics'
QualityReport on the same 32,561 sampled rows), and ML utility: a HistGradientBoosting
model trained on the synthetic rows and tested on the real Adult test split (ROC AUC and
F1 of ">50K"). SDV is used here for comparison only (the ``bench`` extra); it is never a
dependency of datakiln.

Equal work: every contestant runs in a fresh Python process with fresh objects (no cache
filled by an earlier run), and the input files are read once beforehand so the OS page
cache is equally warm for all. Each process reads the CSV (untimed), then times its first
fit and its first sample of ``--sample-rows`` rows (SDV: ``--sdv-sample-rows``, its speed
is per row); ``--rounds`` rounds of fresh processes, interleaved, and the medians with
their spread (min–max) of wall and CPU (process) time are shown. Peak RSS is the child's
own (``resource.getrusage``). datakiln samples on one thread per core; SDV on one.
``--before SRC`` adds a row for an older checkout's ``src`` (same run).

    python benchmarks/synth_copula.py [--rounds 5] [--sample-rows 1000000] [--before /old/src]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

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
        started, cpu = time.perf_counter(), time.process_time()
        model = GaussianCopula().fit(train)
        fit_s, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        model.sample(sample_rows, seed=0)
        sample_s, sample_cpu = time.perf_counter() - started, time.process_time() - cpu
        rows = model.sample(train.num_rows, seed=1)
    else:
        from sdv.metadata import Metadata
        from sdv.single_table import GaussianCopulaSynthesizer

        train = _train()
        frame = train.to_pandas()
        started, cpu = time.perf_counter(), time.process_time()
        metadata = Metadata.detect_from_dataframes({"adult": frame})
        synthesizer = GaussianCopulaSynthesizer(metadata)
        synthesizer.fit({"adult": frame})
        fit_s, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        synthesizer.sample(sample_rows)
        sample_s, sample_cpu = time.perf_counter() - started, time.process_time() - cpu
        sampled = synthesizer.sample(train.num_rows)
        sampled = sampled["adult"] if isinstance(sampled, dict) else sampled  # SDV 2 returns {table: frame}
        rows = pa.Table.from_pandas(sampled, preserve_index=False).cast(train.schema)
    pq.write_table(rows, out)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"fit_s": fit_s, "fit_cpu": fit_cpu, "wall": sample_s, "cpu": sample_cpu,
                      "sample_s": sample_s, "rows": sample_rows, "peak_mb": peak_mb}))


def sdmetrics_score(real: pa.Table, synthetic: pa.Table, roles: dict[str, str]) -> float:
    from sdmetrics.reports.single_table.quality_report import QualityReport

    sdtypes = {"continuous": "numerical", "discrete": "categorical"}
    metadata = {"columns": {name: {"sdtype": sdtypes[role]} for name, role in roles.items()}}
    report = QualityReport()
    report.generate(real.to_pandas(), synthetic.to_pandas(), metadata, verbose=False)
    return report.get_score()


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import synth_copula
synth_copula.child(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
"""


def _cell(c: Any, key: str, cpu_key: str) -> str:
    values = [r[key] for r in c.runs]
    return (f"{statistics.median(values):6.2f} ({min(values):5.2f}–{max(values):5.2f}) | "
            f"{statistics.median(r[cpu_key] for r in c.runs):6.2f}")


def main() -> None:
    from _cold import Contestant, before_env, interleaved

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of fresh processes")
    parser.add_argument("--sample-rows", type=int, default=1_000_000)
    parser.add_argument("--sdv-sample-rows", type=int, default=100_000)
    parser.add_argument("--before", default=None, help="an older checkout's src/ for a 'before' row")
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
        have_sdv = False
        print("SDV/SDMetrics are not installed (pip install -e '.[bench]'): datakiln only")
    else:
        have_sdv = True
    here = str(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory() as folder:
        runs = [Contestant(CONTESTANTS["datakiln"], CHILD,
                           [here, "datakiln", str(args.sample_rows), f"{folder}/datakiln.parquet"])]
        if args.before:
            runs.append(Contestant(CONTESTANTS["datakiln"] + " (before)", CHILD,
                                   [here, "datakiln", str(args.sample_rows), f"{folder}/before.parquet"],
                                   env=before_env(args.before)))
        if have_sdv:
            runs.append(Contestant(CONTESTANTS["sdv"], CHILD,
                                   [here, "sdv", str(args.sdv_sample_rows), f"{folder}/sdv.parquet"]))
        interleaved(runs, args.rounds)
        results = {c.name: (c, pq.read_table(c.argv[-1])) for c in runs}
        train = _train()
        test = datakiln.read(test_path, names=ADULT_COLUMNS).to_arrow()
        test = test.set_column(14, "income", pc.replace_substring(test["income"], ".", ""))
        print(f"Adult train ({train.num_rows:,} rows × 15 columns); cold runs: each contestant in a fresh "
              f"process with fresh objects, input files read once beforehand (page cache equally warm), "
              f"{args.rounds} interleaved rounds, medians (min–max); sampling {args.sample_rows:,} rows "
              f"(SDV {args.sdv_sample_rows:,}); utility: HistGradientBoosting trained on {train.num_rows:,} "
              f"synthetic rows (last round), tested on the real test split; {os.cpu_count()} cores\n")
        header = (f"| {'synthesizer':40} | {'fit wall s (min–max)':>20} | {'CPU s':>6} | "
                  f"{'sample wall s (min–max)':>23} | {'CPU s':>6} | {'M rows/s':>8} | {'peak MB':>7} | "
                  f"{'score':>6} | {'SDMetrics':>9} | {'ROC AUC':>7} | {'F1 >50K':>7} |")
        print(header)
        print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
        speeds, real = {}, None
        for name, (c, rows) in results.items():
            report = datakiln.evaluate(train, rows, holdout=test, target="income", privacy=False,
                                       detection=False)
            roles = {col["column"]: col["role"] for col in report.fidelity["columns"]}
            quality = sdmetrics_score(train, rows, roles) if have_sdv else float("nan")
            utility = report.utility["synthetic"]
            speed = c.median("rows") / c.median("wall")
            speeds[name] = (speed, c.median("rows") / c.median("cpu"), c.median("fit_s"))
            peak = statistics.median(r["peak_mb"] for r in c.runs)
            print(f"| {name:40} | {_cell(c, 'fit_s', 'fit_cpu'):>29} | {_cell(c, 'wall', 'cpu'):>32} | "
                  f"{speed / 1e6:8.3f} | {peak:7,.0f} | {report.fidelity['score']:6.3f} | {quality:9.3f} | "
                  f"{utility['roc_auc']:7.3f} | {utility['minority_f1']:7.3f} |")
            real = report.utility["real"]
        print(f"| {'(real data, for reference)':40} | {'':>{len(header) - 66}} | "
              f"{real['roc_auc']:7.3f} | {real['minority_f1']:7.3f} |")
    ours = speeds[CONTESTANTS["datakiln"]]
    line = f"\ndatakiln sampling {ours[0] / 1e6:.2f} M rows/s wall ({ours[1] / 1e6:.2f} M rows/CPU s)"
    if have_sdv:
        theirs = speeds[CONTESTANTS["sdv"]]
        line += (f" = {ours[0] / theirs[0]:.0f}x SDV GaussianCopula's sampling speed (cold vs cold; CPU: "
                 f"{ours[1] / theirs[1]:.0f}x), fit {theirs[2] / ours[2]:.1f}x faster")
    if args.before:
        before = speeds[CONTESTANTS["datakiln"] + " (before)"]
        line += f"; before: {before[0] / 1e6:.2f} M rows/s"
        if have_sdv:
            line += f" ({before[0] / theirs[0]:.0f}x SDV)"
    print(line)


if __name__ == "__main__":
    main()
