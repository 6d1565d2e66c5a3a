"""SMOTE at scale: datakiln.balance against imbalanced-learn called on in-memory arrays.

Every contestant runs cold in a fresh process (fresh objects; the data is generated inside
the child and not timed, the 10M Parquet file is written beforehand so the page cache is
equally warm), rounds interleaved; the table shows wall and CPU (process) time, medians of
``--rounds`` rounds with their spread (min–max), and the child's peak RSS. 1,000,000 rows
× 20 columns (19 numeric features and a label with a 1% minority): both in memory, same
seed, same rows out (checked). 10,000,000 rows: datakiln reads a Parquet file with a 2 GB
budget and balances class by class, writing Parquet; imbalanced-learn gets the whole
arrays. ``--before SRC`` adds rows for an older checkout's ``src`` (same run). SMOTENC on
Adult closes the table. ``--skip-10m`` leaves the large run out.

    python benchmarks/balance.py [--skip-10m] [--rounds 5] [--rounds-10m 3] [--before /old/src]
                                 [--before-rounds-10m 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

from _cold import Contestant, before_env, interleaved, table

MAKE = textwrap.dedent("""
    import numpy as np, pyarrow as pa
    def make(rows, seed=0):
        rng = np.random.default_rng(seed)
        y = (rng.random(rows) < 0.01).astype(np.int64)
        x = rng.normal(size=(rows, 19)) + y[:, None] * 0.5
        return x, y
""")

IMBLEARN = MAKE + textwrap.dedent("""
    import json, resource, sys, time
    from imblearn.over_sampling import SMOTE
    x, y = make(int(sys.argv[1]))
    start()
    xr, yr = SMOTE(random_state=0).fit_resample(x, y)
    stop(rows=len(yr), checksum=float(xr[-1000:].sum()))
""")

DATAKILN = MAKE + textwrap.dedent("""
    import json, resource, sys, time
    import datakiln, datakiln.balancing, imblearn.over_sampling  # imported before timing, like imblearn
    x, y = make(int(sys.argv[1]))
    table = pa.table({f"x{i}": x[:, i] for i in range(19)} | {"y": y})
    del x
    start()
    out = datakiln.balance(table, "y", method="smote", seed=0, memory_budget="8GB").to_arrow()
    tail = np.column_stack([out[f"x{i}"].to_numpy()[-1000:] for i in range(19)])
    stop(rows=out.num_rows, checksum=float(tail.sum()))
""")

STREAMED = textwrap.dedent("""
    import json, resource, sys, time
    import datakiln
    from datakiln.balancing import Balancer
    start()
    balancer = Balancer("smote", seed=0, memory_budget=sys.argv[3])
    out = balancer.fit_resample(datakiln.read(sys.argv[1]), "y", output=sys.argv[2], overwrite=True)
    stop(rows=out.count(), path=balancer.report_.path)
""")

ADULT = textwrap.dedent("""
    import json, resource, sys, time
    sys.path.insert(0, sys.argv[2])
    import numpy as np, datakiln
    from tests.conftest import ADULT_COLUMNS, ADULT_TRAIN
    table = datakiln.read(ADULT_TRAIN, names=ADULT_COLUMNS).to_arrow()
    start()
    if sys.argv[1] == "datakiln":
        rows = datakiln.balance(table, "income", method="smote", seed=0).count()
    else:
        from imblearn.over_sampling import SMOTENC
        frame = table.to_pandas()
        x, y = frame.drop(columns=["income"]), frame["income"]
        categorical = [i for i, c in enumerate(x.columns) if x[c].dtype == object]
        x = x.fillna("(missing)")
        rows = len(SMOTENC(categorical_features=categorical, random_state=0).fit_resample(x, y)[1])
    stop(rows=rows)
""")


def write_parquet(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for start in range(0, rows, 1_000_000):
        rng = np.random.default_rng([0, start])
        n = min(1_000_000, rows - start)
        y = (rng.random(n) < 0.01).astype(np.int64)
        x = rng.normal(size=(n, 19)) + y[:, None] * 0.5
        table = pa.table({f"x{i}": x[:, i] for i in range(19)} | {"y": y})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=250_000)
    writer.close()


def _print(contestants: list[Contestant]) -> None:
    print(table(contestants, rows_key="rows", unit="M rows out/s"))
    print()
    print(f"| {'contestant':44} | {'rows out':>12} | {'peak RSS GB (median)':>20} |")
    print(f"|{'-' * 46}|{'-' * 14}|{'-' * 22}|")
    for c in contestants:
        print(f"| {c.name:44} | {c.runs[0]['rows']:12,} | {c.median('peak') / 1e9:20.2f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-10m", action="store_true")
    parser.add_argument("--skip-adult", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rounds-10m", type=int, default=3)
    parser.add_argument("--before-rounds-10m", type=int, default=1)
    parser.add_argument("--before", default=None, help="an older checkout's src/ for 'before' rows")
    args = parser.parse_args()
    root = str(Path(__file__).resolve().parents[1])
    old = before_env(args.before)
    small = [Contestant("SMOTE 1M x 20, imbalanced-learn (arrays)", IMBLEARN, ["1000000"]),
             Contestant("SMOTE 1M x 20, datakiln (in memory)", DATAKILN, ["1000000"])]
    if args.before:
        small.append(Contestant("SMOTE 1M x 20, datakiln before", DATAKILN, ["1000000"], env=old))
    interleaved(small, args.rounds)
    theirs, ours = small[0], small[1]
    for c in small[1:]:
        same = c.runs[0]["rows"] == theirs.runs[0]["rows"] and \
            abs(c.runs[0]["checksum"] - theirs.runs[0]["checksum"]) < 1e-6
        assert same, (c.name, c.runs[0], theirs.runs[0])
    print(f"{args.rounds} interleaved cold rounds; medians (min-max)\n")
    _print(small)
    line = (f"datakiln SMOTE on 1M rows = {ours.median('wall') / theirs.median('wall'):.2f}x "
            f"imbalanced-learn's wall time ({ours.median('cpu') / theirs.median('cpu'):.2f}x its CPU time)")
    if args.before:
        line += f"; before: {small[2].median('wall') / theirs.median('wall'):.2f}x"
    if not args.skip_10m:
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "in.parquet"
            write_parquet(source, 10_000_000)
            source.read_bytes()  # the page cache equally warm for every contestant
            out = str(Path(folder) / "out.parquet")
            big = [Contestant("SMOTE 10M x 20, imbalanced-learn (arrays)", IMBLEARN, ["10000000"]),
                   Contestant("SMOTE 10M x 20, datakiln (Parquet, 2GB budget)", STREAMED,
                              [str(source), out, "2GB"])]
            if args.before:
                big.append(Contestant("SMOTE 10M x 20, datakiln before (Parquet, 2GB)", STREAMED,
                                      [str(source), out, "2GB"], env=old))
            interleaved(big[:2], args.rounds_10m)
            if args.before:  # the old path refits neighbours per 1M rows: slow, fewer rounds
                interleaved(big[2:], args.before_rounds_10m)
        print(f"{args.rounds_10m} interleaved cold rounds (before: {args.before_rounds_10m}, after them); "
              f"medians (min-max)\n")
        _print(big)
        line += (f"; 10M rows: {big[1].median('wall') / big[0].median('wall'):.2f}x imbalanced-learn's "
                 f"in-memory wall time, peak {big[1].median('peak') / 1e9:.2f} GB within a 2GB budget vs "
                 f"{big[0].median('peak') / 1e9:.2f} GB")
        if args.before:
            line += f" (before: {big[2].median('wall') / big[0].median('wall'):.2f}x)"
    if not args.skip_adult:
        adult = [Contestant("SMOTENC Adult, imbalanced-learn (pandas)", ADULT, ["imblearn", root]),
                 Contestant("SMOTENC Adult, datakiln", ADULT, ["datakiln", root])]
        interleaved(adult, args.rounds)
        _print(adult)
    print(line)


if __name__ == "__main__":
    sys.exit(main())
