"""One shuffled epoch of 4,096-row batches: datakiln's loader against the usual ways.

Table: 5,000,000 rows × 12 columns (6 float, 3 int, 2 categorical strings with ~10 and
~1,000 levels, 1 timestamp) as zstd Parquet, generated in a temporary folder.

Cold against cold: every contestant runs in a fresh child process with fresh objects
(nothing built by an earlier contestant is reused in memory), which reports its times and
peak RSS. Each input file (the Parquet file, and the Arrow cache once built) is read once
by the parent beforehand, so the operating system's page cache is equally warm for all.
One-time work (a conversion, NumPy arrays made up front) is timed apart from the epoch.
Parallelism is matched: datakiln with 1 thread against the expert's 0 workers (one
process), 2 threads against 2 worker processes; the default (cores + 1 threads) is shown
too.

- datakiln: ``Dataset.cache`` (its own child: the one-time build), then, in a fresh child,
  ``read(cache).loader(4096, seed=0)``; time to first batch includes opening the loader;
- (a) ``torch.utils.data.DataLoader`` over a map-style dataset returning one pandas row
  at a time (tutorial style), timed on the first ``--slow-rows`` rows and extrapolated;
- (b) the expert way: a map-style dataset whose ``__getitems__`` fancy-indexes NumPy
  arrays converted up front (one-time), with 0 and 2 workers;
- (c) Hugging Face ``datasets`` (the ``bench`` extra): ``Dataset.from_parquet`` (one-time
  conversion), ``shuffle(seed=0)``, numpy format, ``iter(batch_size=4096)``, timed on the
  first ``10 × --slow-rows`` rows and extrapolated;
- (d) ``pyarrow.parquet.read_table``, unshuffled: decoding the zstd Parquet input;
- (e) ``pyarrow.ipc`` reading the same Arrow cache the loader reads, unshuffled: the
  ceiling for one pass over the cache.

    python benchmarks/loader.py [--rows 5000000] [--data DIR] [--slow-rows 20000]
"""
from __future__ import annotations

import argparse
import importlib.util
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
path, work, limit, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def done(**result):
    result["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))
"""

EPOCH = """
started = time.perf_counter(); rows = 0; first = None
for batch in loader:
    rows += len(batch["f0"])
    first = first or time.perf_counter() - opened
    if rows >= limit:
        break
done(rows=rows, seconds=time.perf_counter() - started, setup=setup, first=first)
"""

LOADER = """
import datakiln
setup = 0.0
opened = time.perf_counter()
loader = datakiln.read(path, format="arrow").loader(4096, seed=0, num_threads=workers or None)
""" + EPOCH

EXPERT = """
import pyarrow.parquet as pq, torch, numpy as np
started = time.perf_counter()
table = pq.read_table(path)
arrays = {name: table[name].to_numpy() for name in table.column_names if not name.startswith("c")}
arrays["t"] = arrays["t"].astype("int64")
for name in ("c0", "c1"):
    arrays[name] = table[name].dictionary_encode().combine_chunks().indices.to_numpy()
rows_total = table.num_rows
del table
setup = time.perf_counter() - started
class Batches(torch.utils.data.Dataset):
    def __len__(self): return rows_total
    def __getitems__(self, indices):
        index = np.asarray(indices)
        return {k: torch.from_numpy(v[index]) for k, v in arrays.items()}
opened = time.perf_counter()
loader = torch.utils.data.DataLoader(Batches(), batch_size=4096, shuffle=True,
                                     num_workers=workers, collate_fn=lambda b: b)
""" + EPOCH

CHILDREN = {
    "datakiln cache build (one-time)": ("parquet", """
import datakiln
started = time.perf_counter()
cached = datakiln.read(path).cache(work + "/../cache.arrow")
seconds = time.perf_counter() - started
done(rows=cached.count(), seconds=seconds, setup=seconds, first=seconds)
"""),
    "datakiln loader, 1 thread": ("cache", LOADER, 1),
    "datakiln loader, 2 threads": ("cache", LOADER, 2),
    "datakiln loader, cores + 1 threads": ("cache", LOADER, 0),
    "(a) DataLoader, pandas row": ("parquet", """
import pandas as pd, torch
started = time.perf_counter()
frame = pd.read_parquet(path)
setup = time.perf_counter() - started
class Rows(torch.utils.data.Dataset):
    def __len__(self): return len(frame)
    def __getitem__(self, i):
        row = frame.iloc[i]
        return {k: row[k] for k in ("f0", "f1", "f2", "f3", "f4", "f5", "i0", "i1", "i2")}
opened = time.perf_counter()
loader = torch.utils.data.DataLoader(Rows(), batch_size=4096, shuffle=True)
""" + EPOCH, 0, "slow"),
    "(b) expert __getitems__, 0 workers": ("parquet", EXPERT, 0),
    "(b) expert __getitems__, 2 workers": ("parquet", EXPERT, 2),
    "(c) Hugging Face datasets": ("parquet", """
import os
os.environ["HF_DATASETS_OFFLINE"] = "1"
import datasets
started = time.perf_counter()
data = datasets.Dataset.from_parquet(path, cache_dir=work + "/hf")
setup = time.perf_counter() - started
opened = time.perf_counter()
loader = data.shuffle(seed=0).with_format("numpy").iter(batch_size=4096)
""" + EPOCH, 0, "slow10"),
    "(d) pyarrow read_table (no shuffle)": ("parquet", """
import pyarrow.parquet as pq
started = time.perf_counter()
rows = pq.read_table(path).num_rows
seconds = time.perf_counter() - started
done(rows=rows, seconds=seconds, setup=0.0, first=seconds)
"""),
    "(e) pyarrow read of the Arrow cache": ("cache", """
import pyarrow as pa
started = time.perf_counter()
with pa.OSFile(path) as source:
    rows = pa.ipc.open_file(source).read_all().num_rows
seconds = time.perf_counter() - started
done(rows=rows, seconds=seconds, setup=0.0, first=seconds)
"""),
}


def warm(path: Path) -> None:
    """Read ``path`` once so that the page cache is equally warm for every contestant."""
    with open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass


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
    cache = folder / "cache.arrow"
    for stale in (cache, cache.with_name("cache.arrow.json")):
        stale.unlink(missing_ok=True)  # the cache build is measured afresh
    warm(path)
    results = {}
    for label, (needs, body, *rest) in CHILDREN.items():
        workers = rest[0] if rest else 0
        limit = {"slow": args.slow_rows, "slow10": 10 * args.slow_rows}.get(
            rest[1] if len(rest) > 1 else "", args.rows)
        if label.startswith("(c)") and importlib.util.find_spec("datasets") is None:
            print(f"{label}: skipped, the datasets package is not installed (pip install datakiln[bench])")
            continue
        work = folder / label.replace(" ", "_").replace("/", "").replace(",", "")
        shutil.rmtree(work, ignore_errors=True)  # one-time steps are measured afresh
        work.mkdir()
        source = cache if needs == "cache" else path
        results[label] = run_child(HEADER + textwrap.dedent(body), str(source), str(work),
                                   str(limit), str(workers))
        if label.startswith("datakiln cache build"):
            warm(cache)  # every reader of the cache starts from the same warm page cache
    print(f"{args.rows:,} rows × 12 columns, batches of 4,096, one shuffled epoch "
          f"(except (d), (e)); (a) timed on {args.slow_rows:,} rows, (c) on "
          f"{10 * args.slow_rows:,}, their epoch s extrapolated; every contestant in a fresh "
          "process, every input read once beforehand (equally warm page cache)")
    print(f"| {'contestant':38s} | {'one-time s':>10s} | {'epoch s':>9s} | {'M rows/s':>9s} | "
          f"{'1st batch s':>11s} | {'peak RSS GB':>11s} |")
    print(f"|{'-' * 40}|{'-' * 11}:|{'-' * 10}:|{'-' * 10}:|{'-' * 12}:|{'-' * 12}:|")
    rate = {}
    for label, r in results.items():
        rate[label] = r["rows"] / r["seconds"]
        epoch = args.rows / rate[label]
        print(f"| {label:38s} | {r['setup']:10.2f} | {epoch:9.2f} | {rate[label] / 1e6:9.3f} | "
              f"{r['first']:11.3f} | {r['peak'] / 1e9:11.2f} |")
    build = results["datakiln cache build (one-time)"]["seconds"]
    one, two = rate["datakiln loader, 1 thread"], rate["datakiln loader, 2 threads"]
    default = rate["datakiln loader, cores + 1 threads"]
    parquet = results["(d) pyarrow read_table (no shuffle)"]["seconds"]
    first_epoch = build + args.rows / default
    hf = (f"{default / rate['(c) Hugging Face datasets']:.1f}x HF datasets, "
          if "(c) Hugging Face datasets" in rate else "")
    print(f"datakiln = {one / rate['(b) expert __getitems__, 0 workers']:.2f}x expert "
          f"(1 thread vs 0 workers), {two / rate['(b) expert __getitems__, 2 workers']:.2f}x expert "
          f"(2 threads vs 2 workers), {hf}"
          f"{default / rate['(e) pyarrow read of the Arrow cache']:.2f}x reading the same Arrow "
          f"cache unshuffled; cache build {build:.2f} s = {build / parquet:.1f}x raw Parquet "
          f"decode, first epoch with the build = {parquet / first_epoch:.2f}x raw Parquet decode speed")


if __name__ == "__main__":
    main()
