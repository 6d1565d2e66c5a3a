"""CSV read and Parquet profile speed against pandas, pyarrow and polars, in one run.

Generates a 5,000,000-row × 12-column CSV (about 770 MB) and its zstd Parquet copy in a
temporary folder (or reuses ``--data DIR``), then times each reader ``--repeats`` times,
interleaved, and reports medians. datakiln's CSV figure includes its dialect sniffing,
type inference from a sample, NA handling and column-kind inference.

    python benchmarks/read.py [--rows 5000000] [--repeats 3] [--data /tmp/kiln-bench]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from _tables import write_mixed

import datakiln


def _median_seconds(runs: dict[str, list[float]], name: str) -> float:
    return statistics.median(runs[name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None, help="reuse/keep generated files here")
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="kiln-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    csv, parquet = folder / f"mixed_{args.rows}.csv", folder / f"mixed_{args.rows}.parquet"
    if not csv.exists():
        write_mixed(csv, args.rows, "csv")
    if not parquet.exists():
        write_mixed(parquet, args.rows, "parquet")

    readers = {
        "pandas.read_csv": lambda: __import__("pandas").read_csv(csv),
        "pyarrow.csv.read_csv": lambda: pacsv.read_csv(csv),
        "datakiln.read(csv).to_arrow": lambda: datakiln.read(csv).to_arrow(),
        "pyarrow.parquet.read_table": lambda: pq.read_table(parquet),
        "datakiln profile(parquet)": lambda: datakiln.read(parquet).profile(),
    }
    try:
        import polars

        readers["polars.read_csv"] = lambda: polars.read_csv(csv)
    except ImportError:
        pass
    runs: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(args.repeats):
        for name, read in readers.items():
            gc.collect()
            started = time.perf_counter()
            read()
            runs[name].append(time.perf_counter() - started)

    rows = args.rows
    print(f"{rows:,} rows × 12 columns; CSV {csv.stat().st_size / 1e6:,.0f} MB, Parquet "
          f"{parquet.stat().st_size / 1e6:,.0f} MB; median of {args.repeats}")
    print(f"| {'reader':32s} | {'median s':>9s} | {'min s':>7s} | {'M rows/s':>9s} |")
    print(f"|{'-' * 34}|{'-' * 10}:|{'-' * 8}:|{'-' * 10}:|")
    for name in runs:
        median = _median_seconds(runs, name)
        print(f"| {name:32s} | {median:9.2f} | {min(runs[name]):7.2f} | {rows / median / 1e6:9.2f} |")
    ours_csv = _median_seconds(runs, "datakiln.read(csv).to_arrow")
    arrow_csv = _median_seconds(runs, "pyarrow.csv.read_csv")
    pandas_csv = _median_seconds(runs, "pandas.read_csv")
    profile = _median_seconds(runs, "datakiln profile(parquet)")
    parquet_read = _median_seconds(runs, "pyarrow.parquet.read_table")
    print(f"datakiln CSV read speed = {arrow_csv / ours_csv:.2f}x pyarrow.csv "
          f"({pandas_csv / ours_csv:.1f}x pandas); profile(parquet) speed = "
          f"{parquet_read / profile:.2f}x pyarrow.parquet.read_table")


if __name__ == "__main__":
    main()
