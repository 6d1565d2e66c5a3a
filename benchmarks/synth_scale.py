"""Fit the Gaussian copula on a generated Parquet table of 100,000,000 rows × 12 columns.

The table (about 4.6 GB zstd Parquet) is written batch by batch into a temporary folder;
a child process fits ``GaussianCopula(memory_budget="2GB")`` on it (both streaming passes
and the Parquet decoding included), then samples 10,000,000 rows, and reports its own peak
RSS from the operating system (``ru_maxrss``). The peer figure is the bare
``pyarrow.parquet`` read speed of a 5,000,000-row slice in the same run.

    python benchmarks/synth_scale.py [--rows 100000000] [--budget 2GB] [--data DIR]
"""

from __future__ import annotations

import textwrap

from _scale import bare_read_speed, mixed_parquet, run_child, scale_arguments

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import datakiln
    from datakiln.synth import GaussianCopula
    started = time.perf_counter()
    model = GaussianCopula(memory_budget=sys.argv[2]).fit(datakiln.read(sys.argv[1]))
    fit = time.perf_counter() - started
    started = time.perf_counter()
    rows = sum(t.num_rows for t in model.sample_batches(10_000_000, batch_rows=1_000_000, seed=0))
    sample = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rows": model.rows_, "fit": fit, "sampled": rows, "sample": sample, "peak": peak,
                      "by": model.by_, "components": len(model.components_)}))
""")


def main() -> None:
    args, folder = scale_arguments(__doc__, "kiln-synth-scale-")
    path = mixed_parquet(folder, args.rows)
    result = run_child(CHILD, str(path), args.budget)
    bare = bare_read_speed(path)
    fit_speed = result["rows"] / result["fit"]
    rows = [("rows × columns", f"{result['rows']:,} × 12"),
            ("Parquet size on disk", f"{path.stat().st_size / 1e9:.2f} GB"),
            ("memory budget", args.budget),
            ("peak RSS (fit, then sample)", f"{result['peak'] / 1e9:.2f} GB"),
            ("fit wall time (2 passes)", f"{result['fit']:.1f} s"),
            ("fit throughput", f"{fit_speed / 1e6:.2f} M rows/s"),
            ("by columns / components", f"{result['by'] or 'none'} / {result['components']}"),
            ("sample 10M rows", f"{result['sample']:.1f} s"),
            ("sampling throughput", f"{result['sampled'] / result['sample'] / 1e6:.2f} M rows/s"),
            ("pyarrow read_row_groups (5M rows)", f"{bare / 1e6:.2f} M rows/s")]
    print(f"| {'what':36s} | {'value':>18s} |")
    print(f"|{'-' * 38}|{'-' * 19}:|")
    for name, value in rows:
        print(f"| {name:36s} | {value:>18s} |")
    print(f"\npeak RSS {result['peak'] / 1e9:.2f} GB with a {args.budget} budget; fit throughput "
          f"{fit_speed / 1e6:.2f} M rows/s = {fit_speed / bare:.2f}x bare pyarrow read")


if __name__ == "__main__":
    main()
