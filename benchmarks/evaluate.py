"""Fidelity report speed: datakiln.evaluate against SDMetrics' QualityReport, same tables.

Real: 100,000 rows drawn with replacement from Adult train; synthetic: 100,000 rows from
datakiln's Gaussian copula fitted on Adult. Both tools score the same 15 columns with the
same kinds; datakiln's fidelity (shapes, pair trends, missing values, coverage) is timed
without and with its sampled detection/privacy sections. ``--scale`` adds a full
evaluation of generated 1,000,000 × 20 real and synthetic tables.

    python benchmarks/evaluate.py [--repeat 3] [--scale]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import ADULT_COLUMNS, ADULT_TRAIN  # noqa: E402

import datakiln  # noqa: E402
from datakiln.synth import GaussianCopula  # noqa: E402


def timed(fn, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def scale_tables(folder: Path, rows: int = 1_000_000) -> tuple[Path, Path]:
    """Two generated 20-column tables (12 mixed columns + 8 correlated numbers) as Parquet."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _tables import mixed_batch

    paths = []
    for seed in (1, 2):
        pieces = []
        for start in range(0, rows, 250_000):
            table = mixed_batch(start, 250_000, seed).drop_columns(["id"])
            rng = np.random.default_rng([seed, start, 9])
            base = rng.normal(size=(table.num_rows, 1))
            for i in range(9):
                table = table.append_column(f"x{i}", pa.array(base[:, 0] * (0.3 + 0.07 * i)
                                                              + rng.normal(size=table.num_rows)))
            pieces.append(table)
        path = folder / f"t{seed}.parquet"
        import pyarrow.parquet as pq

        pq.write_table(pa.concat_tables(pieces), path, row_group_size=250_000)
        paths.append(path)
    return paths[0], paths[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from sdmetrics.reports.single_table.quality_report import QualityReport

    adult = datakiln.read(ADULT_TRAIN, names=ADULT_COLUMNS).to_arrow()
    rng = np.random.default_rng(0)
    real = adult.take(pa.array(rng.integers(0, adult.num_rows, 100_000)))
    synthetic = GaussianCopula().fit(adult).sample(100_000, seed=1)
    probe = datakiln.evaluate(real, synthetic, detection=False, privacy=False)
    sdtypes = {"continuous": "numerical", "discrete": "categorical"}
    metadata = {"columns": {c["column"]: {"sdtype": sdtypes[c["role"]]} for c in probe.fidelity["columns"]}}
    real_pd, synth_pd = real.to_pandas(), synthetic.to_pandas()

    def sdmetrics_report():
        report = QualityReport()
        report.generate(real_pd, synth_pd, metadata, verbose=False)
        return report

    ours_times, ours = timed(lambda: datakiln.evaluate(real, synthetic, detection=False, privacy=False),
                             args.repeat)
    full_times, full = timed(lambda: datakiln.evaluate(real, synthetic), 1)
    theirs_times, theirs = timed(sdmetrics_report, args.repeat)
    properties = theirs.get_properties().set_index("Property")["Score"]
    rows = [("datakiln fidelity report", ours_times, ours.fidelity["score"], ours.fidelity["column_shapes"],
             ours.fidelity["column_pair_trends"]),
            ("datakiln + detection + privacy", full_times, full.fidelity["score"],
             full.fidelity["column_shapes"],
             full.fidelity["column_pair_trends"]),
            ("SDMetrics QualityReport", theirs_times, theirs.get_score(), properties["Column Shapes"],
             properties["Column Pair Trends"])]
    print("100,000 real × 100,000 synthetic rows, 15 columns (Adult-like)\n")
    print(f"| {'report':32} | {'median s':>9} | {'min s':>7} | {'score':>6} | {'shapes':>6} | {'pairs':>6} |")
    print(f"|{'-' * 34}|{'-' * 11}|{'-' * 9}|{'-' * 8}|{'-' * 8}|{'-' * 8}|")
    for name, times, score, shapes, pairs in rows:
        print(f"| {name:32} | {statistics.median(times):9.2f} | {min(times):7.2f} | {score:6.4f} | "
              f"{shapes:6.4f} | {pairs:6.4f} |")
    if args.scale:
        with tempfile.TemporaryDirectory() as folder:
            real_path, synth_path = scale_tables(Path(folder))
            started = time.perf_counter()
            big = datakiln.evaluate(str(real_path), str(synth_path), holdout=str(real_path))
            seconds = time.perf_counter() - started
        print(f"\n1,000,000 × 20 real and synthetic (+ holdout), full evaluation: {seconds:.1f} s, "
              f"fidelity {big.fidelity['score']:.4f}, detection AUC {big.fidelity['detection_auc']:.3f}")
    agree = abs(ours.fidelity["score"] - theirs.get_score())
    speedup = statistics.median(theirs_times) / statistics.median(ours_times)
    print(f"\ndatakiln fidelity report speed = {speedup:.1f}x SDMetrics QualityReport "
          f"(scores differ by {agree:.4f})")


if __name__ == "__main__":
    main()
