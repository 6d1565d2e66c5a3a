"""SMOTE at scale: datakiln.balance against imbalanced-learn called on in-memory arrays.

Each contestant runs in its own child process so its peak RSS (``ru_maxrss``) is its own;
the data is generated inside the child (not timed). 1,000,000 rows × 20 columns (19
numeric features and a label with a 1% minority): both in memory, same seed, same rows
out. 10,000,000 rows: datakiln reads a Parquet file with a 2 GB budget and balances class
by class, writing Parquet; imbalanced-learn gets the whole arrays. SMOTENC on Adult
closes the table. ``--skip-10m`` leaves the large run out.

    python benchmarks/balance.py [--skip-10m]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

from _scale import run_child

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
    started = time.perf_counter()
    xr, yr = SMOTE(random_state=0).fit_resample(x, y)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    checksum = float(xr[-1000:].sum())
    print(json.dumps({"seconds": seconds, "rows": len(yr), "peak": peak, "checksum": checksum}))
""")

DATAKILN = MAKE + textwrap.dedent("""
    import json, resource, sys, time
    import datakiln, datakiln.balancing, imblearn.over_sampling  # imported before timing, like imblearn
    x, y = make(int(sys.argv[1]))
    table = pa.table({f"x{i}": x[:, i] for i in range(19)} | {"y": y})
    del x
    started = time.perf_counter()
    out = datakiln.balance(table, "y", method="smote", seed=0, memory_budget="8GB").to_arrow()
    seconds = time.perf_counter() - started
    tail = np.column_stack([out[f"x{i}"].to_numpy()[-1000:] for i in range(19)])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "rows": out.num_rows, "peak": peak, "checksum": float(tail.sum())}))
""")

STREAMED = textwrap.dedent("""
    import json, resource, sys, time
    import datakiln
    from datakiln.balancing import Balancer
    started = time.perf_counter()
    balancer = Balancer("smote", seed=0, memory_budget=sys.argv[3])
    out = balancer.fit_resample(datakiln.read(sys.argv[1]), "y", output=sys.argv[2])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "rows": out.count(), "peak": peak, "path": balancer.report_.path}))
""")

ADULT = textwrap.dedent("""
    import json, resource, sys, time
    sys.path.insert(0, sys.argv[2])
    import numpy as np, datakiln
    from tests.conftest import ADULT_COLUMNS, ADULT_TRAIN
    table = datakiln.read(ADULT_TRAIN, names=ADULT_COLUMNS).to_arrow()
    started = time.perf_counter()
    if sys.argv[1] == "datakiln":
        rows = datakiln.balance(table, "income", method="smote", seed=0).count()
    else:
        from imblearn.over_sampling import SMOTENC
        frame = table.to_pandas()
        x, y = frame.drop(columns=["income"]), frame["income"]
        categorical = [i for i, c in enumerate(x.columns) if x[c].dtype == object]
        x = x.fillna("(missing)")
        rows = len(SMOTENC(categorical_features=categorical, random_state=0).fit_resample(x, y)[1])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "rows": rows, "peak": peak}))
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-10m", action="store_true")
    args = parser.parse_args()
    root = str(Path(__file__).resolve().parents[1])
    rows = []
    theirs = run_child(IMBLEARN, "1000000")
    ours = run_child(DATAKILN, "1000000")
    same = ours["rows"] == theirs["rows"] and abs(ours["checksum"] - theirs["checksum"]) < 1e-6
    assert same, (ours, theirs)
    rows += [("SMOTE 1M × 20, imbalanced-learn (arrays)", theirs),
             ("SMOTE 1M × 20, datakiln (in memory)", ours)]
    if not args.skip_10m:
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "in.parquet"
            write_parquet(source, 10_000_000)
            big_theirs = run_child(IMBLEARN, "10000000")
            big_ours = run_child(STREAMED, str(source), str(Path(folder) / "out.parquet"), "2GB")
        rows += [("SMOTE 10M × 20, imbalanced-learn (arrays)", big_theirs),
                 ("SMOTE 10M × 20, datakiln (Parquet, 2GB budget)", big_ours)]
    rows += [("SMOTENC Adult, imbalanced-learn (pandas)", run_child(ADULT, "imblearn", root)),
             ("SMOTENC Adult, datakiln", run_child(ADULT, "datakiln", root))]
    print(f"| {'run':48} | {'seconds':>8} | {'rows out':>12} | {'peak RSS GB':>11} |")
    print(f"|{'-' * 50}|{'-' * 10}|{'-' * 14}|{'-' * 13}|")
    for name, result in rows:
        peak = result["peak"] / 1e9
        print(f"| {name:48} | {result['seconds']:8.2f} | {result['rows']:12,} | {peak:11.2f} |")
    line = f"\ndatakiln SMOTE on 1M rows = {ours['seconds'] / theirs['seconds']:.2f}x imbalanced-learn's time"
    if not args.skip_10m:
        line += (f"; 10M rows: peak {big_ours['peak'] / 1e9:.2f} GB within a 2GB budget vs "
                 f"{big_theirs['peak'] / 1e9:.2f} GB for the direct call")
    print(line)


if __name__ == "__main__":
    sys.exit(main())
