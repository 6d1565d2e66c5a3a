"""One shuffled epoch of 4,096-row batches: datakiln's loader against the usual ways.

Table: 5,000,000 rows × 12 columns (6 float, 3 int, 2 categorical strings with ~10 and
~1,000 levels, 1 timestamp) as zstd Parquet, generated in a temporary folder. Every
contestant runs in its own child process, which reports its time and peak RSS:

- datakiln: ``Dataset.cache`` (one-time, timed apart) then ``loader(4096, seed=0)``; its
  time to first batch includes opening the loader;
- (a) ``torch.utils.data.DataLoader`` over a map-style dataset returning one pandas row
  at a time (tutorial style), timed on the first ``--slow-rows`` rows and extrapolated;
- (b) the expert way: a map-style dataset whose ``__getitems__`` fancy-indexes NumPy
  arrays converted up front, with 0 and 2 workers;
- (c) Hugging Face ``datasets``: ``Dataset.from_parquet`` (one-time conversion, timed
  apart), ``shuffle(seed=0)``, numpy format, ``iter(batch_size=4096)``, timed on the
  first ``10 × --slow-rows`` rows and extrapolated;
- (d) ``pyarrow.parquet.read_table``, unshuffled: the decode ceiling.

    python benchmarks/loader.py [--rows 5000000] [--data DIR] [--slow-rows 20000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _scale import generated, run_child

HEADER = """
import json, resource, sys, time
path, work = sys.argv[1], sys.argv[2]
def done(**result):
    result["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))
"""

CHILDREN = {
    "datakiln loader": """
import datakiln
started = time.perf_counter()
cached = datakiln.read(path).cache(work + "/cache.arrow")
cache_seconds = time.perf_counter() - started
opened = time.perf_counter()
loader = cached.loader(4096, seed=0)  # maps (or loads) the cache: counted in the first batch
started = time.perf_counter(); rows = 0; first = None
for batch in loader:
    rows += len(batch["f0"])
    first = first or time.perf_counter() - opened
done(rows=rows, seconds=time.perf_counter() - started, setup=cache_seconds, first=first)
""",
    "(a) DataLoader, pandas row": """
import pandas as pd, torch
frame = pd.read_parquet(path)
limit = int(sys.argv[3])
class Rows(torch.utils.data.Dataset):
    def __len__(self): return limit
    def __getitem__(self, i):
        row = frame.iloc[i]
        return {k: row[k] for k in ("f0", "f1", "f2", "f3", "f4", "f5", "i0", "i1", "i2")}
loader = torch.utils.data.DataLoader(Rows(), batch_size=4096, shuffle=True)
started = time.perf_counter(); rows = 0; first = None
for batch in loader:
    rows += len(batch["f0"])
    first = first or time.perf_counter() - started
done(rows=rows, seconds=time.perf_counter() - started, setup=0.0, first=first)
""",
    "(b) expert __getitems__, 0 workers": """
import pyarrow.parquet as pq, torch, numpy as np
table = pq.read_table(path)
arrays = {name: table[name].to_numpy() for name in table.column_names
          if not name.startswith("c")}
arrays["t"] = arrays["t"].astype("int64")
for name in ("c0", "c1"):
    codes = table[name].dictionary_encode().combine_chunks()
    arrays[name] = codes.indices.to_numpy()
class Batches(torch.utils.data.Dataset):
    def __len__(self): return table.num_rows
    def __getitems__(self, indices):
        index = np.asarray(indices)
        return {k: torch.from_numpy(v[index]) if v.dtype != object else v[index] for k, v in arrays.items()}
workers = int(sys.argv[4])
loader = torch.utils.data.DataLoader(Batches(), batch_size=4096, shuffle=True,
                                     num_workers=workers, collate_fn=lambda b: b)
started = time.perf_counter(); rows = 0; first = None
for batch in loader:
    rows += len(batch["f0"])
    first = first or time.perf_counter() - started
done(rows=rows, seconds=time.perf_counter() - started, setup=0.0, first=first)
""",
    "(c) Hugging Face datasets": """
import os
os.environ["HF_DATASETS_OFFLINE"] = "1"
import datasets
started = time.perf_counter()
data = datasets.Dataset.from_parquet(path, cache_dir=work + "/hf")
setup = time.perf_counter() - started
data = data.shuffle(seed=0).with_format("numpy")
limit = 10 * int(sys.argv[3])
started = time.perf_counter(); rows = 0; first = None
for batch in data.iter(batch_size=4096):
    rows += len(batch["f0"])
    first = first or time.perf_counter() - started
    if rows >= limit:
        break
done(rows=rows, seconds=time.perf_counter() - started, setup=setup, first=first)
""",
    "(d) pyarrow read_table (no shuffle)": """
import pyarrow.parquet as pq
started = time.perf_counter()
rows = pq.read_table(path).num_rows
seconds = time.perf_counter() - started
done(rows=rows, seconds=seconds, setup=0.0, first=seconds)
""",
}


def make_table(path: Path, rows: int, chunk: int = 500_000) -> None:
    """6 float, 3 int, 2 categorical (~10, ~1,000 levels) and 1 timestamp column."""
    writer = None
    small = np.array([f"level_{i}" for i in range(10)])
    large = np.array([f"category_{i:04d}" for i in range(1000)])
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        rng = np.random.default_rng([0, start])
        columns = {f"f{i}": rng.normal(size=n) for i in range(6)}
        columns |= {f"i{i}": rng.integers(0, 10 ** (i + 2), n) for i in range(3)}
        columns |= {"c0": small[rng.integers(0, 10, n)], "c1": large[rng.integers(0, 1000, n)]}
        columns["t"] = pa.array(np.datetime64("2020-01-01", "s") + rng.integers(0, 10**8, n))
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=500_000)
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--slow-rows", type=int, default=20_000)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="kiln-loader-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = generated(folder / f"loader_{args.rows}.parquet", lambda p: make_table(p, args.rows))
    results = {}
    for name, body in CHILDREN.items():
        runs = [("0",)] if "0 workers" not in name else [("0",), ("2",)]
        for (workers,) in runs:
            label = name.replace("0 workers", f"{workers} workers")
            work = folder / label.replace(" ", "_").replace("/", "")
            shutil.rmtree(work, ignore_errors=True)  # one-time steps are measured afresh
            work.mkdir()
            code = HEADER + textwrap.dedent(body)
            results[label] = run_child(code, str(path), str(work), str(args.slow_rows), workers)
    print(f"{args.rows:,} rows × 12 columns, batches of 4,096, one shuffled epoch "
          f"(except (d)); (a) timed on {args.slow_rows:,} rows, (c) on {10 * args.slow_rows:,}; "
          "epoch s of (a) and (c) extrapolated")
    print(f"| {'contestant':38s} | {'one-time s':>10s} | {'epoch s':>9s} | {'M rows/s':>9s} | "
          f"{'1st batch s':>11s} | {'peak RSS GB':>11s} |")
    print(f"|{'-' * 40}|{'-' * 11}:|{'-' * 10}:|{'-' * 10}:|{'-' * 12}:|{'-' * 12}:|")
    rate = {}
    for label, r in results.items():
        rate[label] = r["rows"] / r["seconds"]
        epoch = args.rows / rate[label]
        print(f"| {label:38s} | {r['setup']:10.2f} | {epoch:9.2f} | {rate[label] / 1e6:9.3f} | "
              f"{r['first']:11.3f} | {r['peak'] / 1e9:11.2f} |")
    ours = rate["datakiln loader"]
    raw = results["(d) pyarrow read_table (no shuffle)"]["seconds"]
    print(f"datakiln = {ours / rate['(b) expert __getitems__, 0 workers']:.2f}x expert (0 workers), "
          f"{ours / rate['(b) expert __getitems__, 2 workers']:.2f}x expert (2 workers), "
          f"{ours / rate['(c) Hugging Face datasets']:.1f}x HF datasets, "
          f"{ours / rate['(d) pyarrow read_table (no shuffle)']:.2f}x raw Parquet decode; "
          f"cache build = {results['datakiln loader']['setup'] / raw:.1f}x raw Parquet read")


if __name__ == "__main__":
    main()
