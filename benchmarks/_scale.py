"""What the scale benchmarks share: arguments, generated inputs, a measured child process."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def scale_arguments(doc: str, prefix: str) -> tuple[argparse.Namespace, Path]:
    """Parse ``--rows``, ``--budget`` and ``--data``; returns the arguments and the folder."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--budget", default="1GB")
    parser.add_argument("--data", type=Path, default=None, help="reuse/keep generated files here")
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix=prefix))
    folder.mkdir(parents=True, exist_ok=True)
    return args, folder


def generated(path: Path, make: Callable[[Path], Any]) -> Path:
    """``make(path)`` unless the file is already there, printing how long it took."""
    if not path.exists():
        started = time.perf_counter()
        make(path)
        print(f"generated {path} in {time.perf_counter() - started:.0f} s")
    return path


def mixed_parquet(folder: Path, rows: int) -> Path:
    """The generated 12-column mixed table of ``rows`` rows as Parquet in ``folder`` (made once)."""
    from _tables import write_mixed

    return generated(folder / f"mixed_{rows}.parquet", lambda p: write_mixed(
        p, rows, "parquet", chunk=1_000_000, row_group=500_000))


def bare_read_speed(path: Path, groups: int = 10) -> float:
    """Rows per second of a bare ``pyarrow.parquet`` read of the first ``groups`` row groups."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    started = time.perf_counter()
    rows = file.read_row_groups(list(range(min(groups, file.num_row_groups)))).num_rows
    return rows / (time.perf_counter() - started)


def run_child(code: str, *argv: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (so its peak RSS is its own) and parse its JSON."""
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the measured child failed:\n{out.stderr}")
    return json.loads(out.stdout)
