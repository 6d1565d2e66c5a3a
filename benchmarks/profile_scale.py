"""``profile()`` of a generated Parquet table (default 5,000,000 rows × 12 columns) against a bare read.

The peer is a bare ``pyarrow.parquet.read_table`` of the same file (all threads), in the
same run. Cold against cold: every contestant runs in a fresh process after the file was
read once by the parent (page cache equally warm), rounds interleaved; the table shows wall
and CPU (process) time, medians of ``--rounds`` with their spread, and each child's peak RSS
beside the budget. ``--before SRC`` adds a row for an older checkout's ``src``. The
headline is profile speed as a share of the bare read's (1.0: as fast as decoding alone).

    python benchmarks/profile_scale.py [--rows 5000000] [--budget 1GB] [--rounds 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _cold import Contestant, before_env, interleaved, table
from _scale import mixed_parquet

from datakiln.units import parse_bytes

BARE = """
import sys
import pyarrow.parquet as pq
start()
rows = pq.read_table(sys.argv[1]).num_rows
stop(rows=rows)
"""

PROFILE = """
import sys
import datakiln
start()
profile = datakiln.read(sys.argv[1]).profile(memory_budget=sys.argv[2])
stop(rows=profile.rows, columns=len(profile.columns))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--budget", default="1GB")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=None, help="reuse/keep generated files here")
    parser.add_argument("--before", default=None, help="an older checkout's src/ for a 'before' row")
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="kiln-profile-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = mixed_parquet(folder, args.rows)
    path.read_bytes()  # the page cache equally warm for every contestant
    contestants = [Contestant("pyarrow.parquet.read_table (bare)", BARE, [str(path)]),
                   Contestant("datakiln profile()", PROFILE, [str(path), args.budget])]
    if args.before:
        contestants.append(Contestant("datakiln profile() (before)", PROFILE, [str(path), args.budget],
                                      env=before_env(args.before)))
    interleaved(contestants, args.rounds)
    print(f"{args.rows:,} rows × 12 columns, zstd Parquet {path.stat().st_size / 1e9:.2f} GB; budget "
          f"{args.budget}; {args.rounds} interleaved cold rounds, medians (min–max)\n")
    print(table(contestants, rows_key="rows"))
    print()
    budget = parse_bytes(args.budget)
    for c in contestants[1:]:
        peak = c.median("peak")
        print(f"{c.name}: peak RSS {peak / 1e9:.2f} GB, within the {args.budget} budget: "
              f"{'yes' if peak <= budget else 'no'}")
    bare = contestants[0]
    ratios = [bare.runs[i]["wall"] / c.runs[i]["wall"] for c in contestants[1:2] for i in range(args.rounds)]
    line = (f"profile speed = {bare.median('wall') / contestants[1].median('wall'):.2f}x a bare pyarrow "
            f"read (wall, medians; per round {min(ratios):.2f}–{max(ratios):.2f}x)")
    if args.before:
        line += f"; before: {bare.median('wall') / contestants[2].median('wall'):.2f}x"
    print(line)


if __name__ == "__main__":
    main()
