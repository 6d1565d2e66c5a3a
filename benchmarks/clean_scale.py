"""Clean a generated 50,000,000-row Parquet table within a 1 GB memory budget.

The table has missing values, duplicate rows, padded text and outliers (see
``clean.py``). The cleaning (trim, drop duplicates, impute medians/modes, clip IQR
outliers, write Parquet) runs in a child process whose peak RSS is read from the
operating system (``ru_maxrss``).

    python benchmarks/clean_scale.py [--rows 50000000] [--budget 1GB] [--data DIR]
"""

from __future__ import annotations

import textwrap

from _scale import generated, run_child, scale_arguments
from clean import write_dirty

from datakiln.units import parse_bytes

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import datakiln
    from datakiln.clean import Cleaner, DropDuplicates, Impute, Outliers, RepairTypes
    started = time.perf_counter()
    cleaner = Cleaner([RepairTypes(numbers=False, dates=False, case=False), DropDuplicates(),
                       Impute(strategy="median"), Outliers(method="iqr", action="clip")],
                      memory_budget=sys.argv[3])
    dataset = datakiln.read(sys.argv[1])
    out = cleaner.fit(dataset).transform(dataset, output=sys.argv[2])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report = cleaner.report_
    print(json.dumps({"rows_in": report.rows_in, "rows_out": report.rows_out,
                      "duplicates": report.step("duplicates").rows_removed,
                      "imputed": sum(v for c in report.step("missing").columns.values() for v in c.values()),
                      "seconds": seconds, "peak": peak}))
""")


def main() -> None:
    args, folder = scale_arguments(__doc__, "kiln-clean-scale-")
    source = generated(folder / f"dirty_{args.rows}.parquet", lambda p: write_dirty(p, args.rows))
    result = run_child(CHILD, str(source), str(folder / "clean.parquet"), args.budget)
    print(f"| {'what':34s} | {'value':>16s} |")
    print(f"|{'-' * 36}|{'-' * 17}:|")
    print(f"| {'rows in':34s} | {result['rows_in']:>16,} |")
    print(f"| {'duplicate rows dropped':34s} | {result['duplicates']:>16,} |")
    print(f"| {'values imputed':34s} | {result['imputed']:>16,} |")
    print(f"| {'rows out':34s} | {result['rows_out']:>16,} |")
    print(f"| {'memory budget':34s} | {args.budget:>16s} |")
    print(f"| {'peak RSS of the cleaning process':34s} | {result['peak'] / 1e9:>13.2f} GB |")
    print(f"| {'wall time (fit + clean + write)':34s} | {result['seconds']:>14.0f} s |")
    print(f"| {'throughput':34s} | {result['rows_in'] / result['seconds'] / 1e6:>9.2f} M rows/s |")
    within = result["peak"] <= parse_bytes(args.budget)
    print(f"peak RSS {result['peak'] / 1e9:.2f} GB within the {args.budget} budget: "
          f"{'yes' if within else 'no'}")


if __name__ == "__main__":
    main()
