"""Profile a generated Parquet table of 50,000,000 rows × 12 columns under a 1 GB budget.

Writes the table batch by batch into a temporary folder (about 2.3 GB zstd Parquet,
4.6 GB as Arrow in memory), then profiles it in a child process and reports the child's
peak RSS from the operating system (``ru_maxrss``) beside the budget, and the throughput.
The peer figure is the bare ``pyarrow.parquet.read_table`` of a 5,000,000-row slice in the
same run (reading all 50M rows that way would need the whole table in memory).

    python benchmarks/profile_scale.py [--rows 50000000] [--budget 1GB] [--data DIR]
"""

from __future__ import annotations

import textwrap

from _scale import bare_read_speed, mixed_parquet, run_child, scale_arguments

from datakiln.units import parse_bytes

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import datakiln
    started = time.perf_counter()
    profile = datakiln.read(sys.argv[1]).profile(memory_budget=sys.argv[2])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rows": profile.rows, "seconds": seconds, "peak": peak,
                      "columns": len(profile.columns)}))
""")


def main() -> None:
    args, folder = scale_arguments(__doc__, "kiln-scale-")
    path = mixed_parquet(folder, args.rows)
    result = run_child(CHILD, str(path), args.budget)
    bare = bare_read_speed(path)
    ours = result["rows"] / result["seconds"]
    print(f"| {'what':36s} | {'value':>16s} |")
    print(f"|{'-' * 38}|{'-' * 17}:|")
    print(f"| {'rows × columns':36s} | {result['rows']:>10,} × {result['columns']:<3d} |")
    print(f"| {'Parquet size on disk':36s} | {path.stat().st_size / 1e9:>13.2f} GB |")
    print(f"| {'memory budget':36s} | {args.budget:>16s} |")
    print(f"| {'peak RSS of the profiling process':36s} | {result['peak'] / 1e9:>13.2f} GB |")
    print(f"| {'profile wall time':36s} | {result['seconds']:>14.1f} s |")
    print(f"| {'profile throughput':36s} | {ours / 1e6:>9.2f} M rows/s |")
    print(f"| {'pyarrow read_row_groups (5M rows)':36s} | {bare / 1e6:>9.2f} M rows/s |")
    within = result["peak"] <= parse_bytes(args.budget)
    print(f"peak RSS {result['peak'] / 1e9:.2f} GB within the {args.budget} budget: "
          f"{'yes' if within else 'no'}; profile throughput = {ours / bare:.2f}x bare pyarrow read")


if __name__ == "__main__":
    main()
