"""Building the loader's Arrow cache (``Dataset.cache``) against a bare Parquet read of the same file.

The table: the generated 12-column mixed table (default 5,000,000 rows, zstd Parquet).
The peer is ``pyarrow.parquet.read_table`` of the file (all threads); the cache build
decodes the same file and writes an uncompressed Arrow IPC file (fingerprint included).
Cold against cold: a fresh process per run after the file was read once by the parent,
rounds interleaved; wall and CPU (process) time, medians of ``--rounds`` with their spread.
``--before SRC`` adds a row for an older checkout's ``src``.

    python benchmarks/cache_build.py [--rows 5000000] [--rounds 5] [--data DIR] [--before /old/src]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _cold import Contestant, before_env, interleaved, table
from _scale import mixed_parquet

BARE = """
import sys
import pyarrow.parquet as pq
start()
rows = pq.read_table(sys.argv[1]).num_rows
stop(rows=rows)
"""

BUILD = """
import os, sys
import datakiln
target = sys.argv[2]
for stale in (target, target + ".json"):
    if os.path.exists(stale):
        os.remove(stale)
start()
rows = datakiln.read(sys.argv[1]).cache(target).count()
stop(rows=rows)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=None, help="reuse/keep generated files here")
    parser.add_argument("--before", default=None, help="an older checkout's src/ for a 'before' row")
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="kiln-cache-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = mixed_parquet(folder, args.rows)
    path.read_bytes()  # the page cache equally warm for every contestant
    contestants = [Contestant("pyarrow.parquet.read_table (bare)", BARE, [str(path)]),
                   Contestant("datakiln Dataset.cache build", BUILD, [str(path), str(folder / "c.arrow")])]
    if args.before:
        contestants.append(Contestant("datakiln Dataset.cache build (before)", BUILD,
                                      [str(path), str(folder / "b.arrow")], env=before_env(args.before)))
    interleaved(contestants, args.rounds)
    print(f"{args.rows:,} rows × 12 columns, zstd Parquet {path.stat().st_size / 1e9:.2f} GB; "
          f"{args.rounds} interleaved cold rounds, medians (min–max)\n")
    print(table(contestants, rows_key="rows"))
    print()
    bare = contestants[0]
    ratio = contestants[1].median("wall") / bare.median("wall")
    line = f"cache build = {ratio:.2f}x a bare Parquet read (wall)"
    if args.before:
        line += f"; before: {contestants[2].median('wall') / bare.median('wall'):.2f}x"
    print(line)


if __name__ == "__main__":
    main()
