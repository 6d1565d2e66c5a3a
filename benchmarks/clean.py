"""Cleaning speed: datakiln's Cleaner against pandas + scikit-learn, in one run.

Generates a table (default 5,000,000 rows × 12 columns) with missing values, exact
duplicate rows, padded text and outliers, as zstd Parquet in a temporary folder. Both
sides read the file, trim text, drop exact duplicates, impute medians (numbers) and modes
(text), clip outliers at the IQR fences, and write zstd Parquet.

Cold against cold: every contestant runs in a fresh process (fresh objects) after the
input file was read once by the parent (page cache equally warm), rounds interleaved; the
table shows wall and CPU (process) time, medians of ``--rounds`` with their spread.
``--before SRC`` adds a row for an older checkout's ``src`` in the same run.

    python benchmarks/clean.py [--rows 5000000] [--rounds 5] [--data DIR] [--before /old/src]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _tables import mixed_batch

import datakiln
from datakiln.clean import Cleaner, DropDuplicates, Impute, Outliers, RepairTypes


def dirty_batch(start: int, rows: int, seed: int) -> pa.Table:
    """The mixed table with 5 % nulls, 1 % duplicated rows, padded text and outliers."""
    table = mixed_batch(start, rows, seed).drop_columns(["id"])
    rng = np.random.default_rng([seed, start, 1])
    repeat = rng.random(rows) < 0.01
    table = table.take(pa.array(np.where(repeat, np.maximum(np.arange(rows) - 1, 0), np.arange(rows))))
    for name in ("age", "income", "city"):
        mask = pa.array(rng.random(rows) < 0.05)
        table = table.set_column(table.schema.get_field_index(name), name,
                                 pc.if_else(mask, pa.scalar(None, table[name].type), table[name]))
    padded = pc.binary_join_element_wise(" ", table["segment"], "")
    table = table.set_column(table.schema.get_field_index("segment"), "segment",
                             pc.if_else(pa.array(rng.random(rows) < 0.3), padded, table["segment"]))
    spikes = np.where(rng.random(rows) < 0.001, 1e9, 0.0)
    return table.set_column(table.schema.get_field_index("balance"), "balance",
                            pc.add(table["balance"], pa.array(spikes)))


def write_dirty(path: Path, rows: int, chunk: int = 500_000) -> None:
    writer = None
    for start in range(0, rows, chunk):
        table = dirty_batch(start, min(chunk, rows - start), 0)
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table)
    writer.close()


def with_datakiln(source: Path, target: Path) -> int:
    cleaner = Cleaner([RepairTypes(numbers=False, dates=False, case=False), DropDuplicates(),
                       Impute(strategy="median"), Outliers(method="iqr", action="clip")])
    dataset = datakiln.read(source)
    return cleaner.fit(dataset).transform(dataset, output=target).count()


def with_pandas(source: Path, target: Path) -> int:
    import pandas as pd
    from sklearn.impute import SimpleImputer

    frame = pd.read_parquet(source)
    text = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype) in ("string", "str")]
    for column in text:
        frame[column] = frame[column].str.strip()
    frame = frame.drop_duplicates()
    numbers = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    frame[numbers] = SimpleImputer(strategy="median").fit_transform(frame[numbers])
    if text:
        frame[text] = SimpleImputer(strategy="most_frequent").fit_transform(frame[text])
    q1, q3 = frame[numbers].quantile(0.25), frame[numbers].quantile(0.75)
    frame[numbers] = frame[numbers].clip(q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1), axis=1)
    frame.to_parquet(target, compression="zstd", index=False)
    return len(frame)


CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import clean
run = clean.with_pandas if sys.argv[2] == "pandas" else clean.with_datakiln
start()
rows = run(Path(sys.argv[3]), Path(sys.argv[4]))
stop(rows=rows)
"""


def main() -> None:
    from _cold import Contestant, before_env, interleaved, table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--before", default=None, help="an older checkout's src/ for a 'before' row")
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="kiln-clean-"))
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"dirty_{args.rows}.parquet"
    if not source.exists():
        write_dirty(source, args.rows)
    source.read_bytes()  # the page cache equally warm for every contestant
    here = str(Path(__file__).resolve().parent)
    contestants = [Contestant("pandas + scikit-learn", CHILD, [here, "pandas", str(source),
                                                               str(folder / "out_pandas.parquet")]),
                   Contestant("datakiln Cleaner", CHILD, [here, "datakiln", str(source),
                                                          str(folder / "out_datakiln.parquet")])]
    if args.before:
        contestants.append(Contestant("datakiln Cleaner (before)", CHILD, [here, "datakiln", str(source),
                                      str(folder / "out_before.parquet")], env=before_env(args.before)))
    interleaved(contestants, args.rounds)
    print(f"{args.rows:,} rows × 11 columns (5 % nulls in 3 columns, ~1 % duplicate rows, padded "
          f"text, outliers); read → trim → dedup → impute → clip → write zstd Parquet; "
          f"{args.rounds} interleaved cold rounds, medians (min–max)\n")
    for c in contestants:
        c.runs = [dict(r, rows_in=args.rows) for r in c.runs]
    print(table(contestants, rows_key="rows_in", unit="M rows in/s"))
    print()
    print("rows out: " + ", ".join(f"{c.name} {c.runs[0]['rows']:,}" for c in contestants))
    pandas, ours = contestants[0], contestants[1]
    line = (f"datakiln Cleaner: {args.rows / ours.median('wall') / 1e6:.2f} M rows/s (wall) = "
            f"{pandas.median('wall') / ours.median('wall'):.2f}x pandas + scikit-learn")
    if args.before:
        before = contestants[2]
        line += (f"; before: {args.rows / before.median('wall') / 1e6:.2f} M rows/s "
                 f"({pandas.median('wall') / before.median('wall'):.2f}x)")
    print(line)


if __name__ == "__main__":
    main()
