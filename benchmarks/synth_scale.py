"""Gaussian copula on a generated Parquet table of 12 mixed columns: fit at scale, then sampling speed.

The table (default 100,000,000 rows, about 4.6 GB zstd Parquet) is written batch by batch
into a folder; a child process fits ``GaussianCopula(memory_budget=...)`` on it (both
streaming passes and the Parquet decoding included), saves the model, and reports its own
peak RSS (``ru_maxrss``). Sampling is then measured cold against cold: fresh processes load
the model file and draw ``--sample-rows`` rows in 1,000,000-row batches, ``--rounds``
interleaved rounds, wall and CPU (process) time, medians with their spread. ``--before SRC``
fits with an older checkout's ``src`` (so both can load the file) and adds its sampling row.
The peer figure for the fit is the bare ``pyarrow.parquet`` read speed of a slice.

    python benchmarks/synth_scale.py [--rows 100000000] [--budget 2GB] [--data DIR] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
from pathlib import Path

from _cold import Contestant, before_env, interleaved, table
from _scale import bare_read_speed, mixed_parquet

FIT = textwrap.dedent("""
    import sys
    import datakiln
    from datakiln.synth import GaussianCopula
    start()
    model = GaussianCopula(memory_budget=sys.argv[2]).fit(datakiln.read(sys.argv[1]))
    model.save(sys.argv[3], overwrite=True)
    stop(rows=model.rows_, by=model.by_, components=len(model.components_))
""")

SAMPLE = textwrap.dedent("""
    import sys
    from datakiln.synth import load
    model = load(sys.argv[1])
    start()
    rows = sum(t.num_rows for t in model.sample_batches(int(sys.argv[2]), batch_rows=1_000_000, seed=0))
    stop(rows=rows)
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--budget", default="2GB")
    parser.add_argument("--data", type=Path, default=None, help="reuse/keep generated files here")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sample-rows", type=int, default=10_000_000)
    parser.add_argument("--before", default=None, help="an older checkout's src/ for a 'before' row")
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="kiln-synth-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = mixed_parquet(folder, args.rows)
    model_path = folder / f"model_{args.rows}.kiln"
    fit = Contestant("fit", FIT, [str(path), args.budget, str(model_path)], env=before_env(args.before))
    result = fit.run_once()
    bare = bare_read_speed(path)
    fit_speed = result["rows"] / result["wall"]
    rows = [("rows × columns", f"{result['rows']:,} × 12"),
            ("Parquet size on disk", f"{path.stat().st_size / 1e9:.2f} GB"),
            ("memory budget", args.budget),
            ("peak RSS of the fit", f"{result['peak'] / 1e9:.2f} GB"),
            ("fit wall / CPU time (2 passes)", f"{result['wall']:.1f} s / {result['cpu']:.1f} s"),
            ("fit throughput", f"{fit_speed / 1e6:.2f} M rows/s"),
            ("by columns / components", f"{result['by'] or 'none'} / {result['components']}"),
            ("pyarrow read_row_groups (5M rows)", f"{bare / 1e6:.2f} M rows/s")]
    print(f"| {'what':36s} | {'value':>22s} |")
    print(f"|{'-' * 38}|{'-' * 23}:|")
    for name, value in rows:
        print(f"| {name:36s} | {value:>22s} |")
    contestants = [Contestant("datakiln sample_batches", SAMPLE, [str(model_path), str(args.sample_rows)])]
    if args.before:
        contestants.append(Contestant("datakiln sample_batches (before)", SAMPLE,
                                      [str(model_path), str(args.sample_rows)], env=before_env(args.before)))
    interleaved(contestants, args.rounds)
    print(f"\nsampling {args.sample_rows:,} rows from the model file, {args.rounds} interleaved cold rounds, "
          f"medians (min–max), {os.cpu_count()} cores\n")
    print(table(contestants, rows_key="rows"))
    ours = contestants[0]
    line = (f"\nsampling {ours.median('rows') / ours.median('wall') / 1e6:.2f} M rows/s wall "
            f"({ours.median('rows') / ours.median('cpu') / 1e6:.2f} M rows/CPU s)")
    if args.before:
        before = contestants[1]
        line += (f"; before {before.median('rows') / before.median('wall') / 1e6:.2f} M rows/s "
                 f"= {before.median('wall') / ours.median('wall'):.2f}x faster now")
    print(line + f"; fit {fit_speed / 1e6:.2f} M rows/s = {fit_speed / bare:.2f}x bare pyarrow read")


if __name__ == "__main__":
    main()
