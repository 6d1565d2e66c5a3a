"""Fault injection: ``kiln convert`` of a 40 MB CSV over an older output, killed with ``kill -9``.

Usage: python scripts/fault_inject_convert.py [--runs 20] [--commit-runs 6] [--mb 40] [--keep DIR]

Each run starts from the older output (a ``kiln convert`` of a small CSV), then starts
``kiln convert big.csv out --rows-per-file 200000`` in a child process and kills it with
SIGKILL: ``--commit-runs`` runs inside the commit window (the test-only hook
``DATAKILN_TEST_PAUSE_BEFORE_COMMIT`` pauses the writer with every byte written, just before
its rename; the kill lands during the pause), the others at moments spread over a measured
uninterrupted run. After each kill the output directory must hold, file for file (SHA-256
of every file, the manifest included), the complete old output or the complete new one,
and both CSV files must be byte-identical to what they were. The next write to the same
place (converting the small CSV again, which restores the older output for the next run)
must then remove every temporary the killed writer left.

Prints one row per run and a last line with the totals; exit status 1 if any run broke.
Big inputs are generated in a temporary folder (or ``--keep DIR``) and never enter the
repository. Run it under ``flock /tmp/datakiln-heavy.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROWS_PER_FILE = "200000"


def make_csv(path: Path, megabytes: float, seed: int, first_id: int) -> None:
    """A CSV of about ``megabytes`` MB: id, a float, a category and a short text."""
    rng = np.random.default_rng(seed)
    rows = int(megabytes * 1e6 / 30)
    table = pa.table({
        "id": np.arange(first_id, first_id + rows),
        "value": np.round(rng.normal(0, 1, rows), 6),
        "group": pa.array(rng.choice(["alpha", "beta", "gamma", "delta"], rows)),
        "note": pa.array(rng.choice(["ok", "late", "refund", "n/a"], rows)),
    })
    pacsv.write_csv(table, path)


def digest(directory: Path) -> dict[str, str] | None:
    """SHA-256 of every file under ``directory`` by relative path; None if it is missing."""
    if not directory.is_dir():
        return None
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def file_state(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def convert(source: Path, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "datakiln.cli", "convert", str(source), str(out),
                             "--rows-per-file", ROWS_PER_FILE],
                            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def finish(child: subprocess.Popen[bytes]) -> None:
    _, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"kiln convert failed: {err.decode()[-2000:]}")


def leftovers(folder: Path) -> tuple[int, int]:
    """Hidden temporaries/backups of ``out`` in ``folder``: (count, bytes)."""
    count = size = 0
    for entry in folder.iterdir():
        if entry.name.startswith(".out."):
            count += 1
            files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
            size += sum(p.stat().st_size for p in files)
    return count, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--commit-runs", type=int, default=6)
    parser.add_argument("--mb", type=float, default=40.0)
    parser.add_argument("--keep", type=Path, default=None, help="work here instead of a temporary folder")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="kiln-fault-"))
    base.mkdir(parents=True, exist_ok=True)
    big, small, out = base / "big.csv", base / "small.csv", base / "out"
    make_csv(big, args.mb, seed=1, first_id=0)
    make_csv(small, 2.0, seed=2, first_id=10_000_000)
    print(f"inputs: {big} {big.stat().st_size / 1e6:.1f} MB, {small} {small.stat().st_size / 1e6:.1f} MB")

    finish(convert(small, base / "ref_old"))
    started = time.perf_counter()
    finish(convert(big, base / "ref_new"))
    duration = time.perf_counter() - started
    old_ref, new_ref = digest(base / "ref_old"), digest(base / "ref_new")
    finish(convert(big, base / "ref_new"))  # Parquet output must be byte-reproducible for this check
    if digest(base / "ref_new") != new_ref:
        raise SystemExit("two conversions of the same CSV differ byte for byte; cannot compare")
    print(f"uninterrupted convert of the big CSV: {duration:.2f} s, {len(new_ref or {})} files "
          f"(old output: {len(old_ref or {})} files)")
    sources = {p: file_state(p) for p in (big, small)}

    timed = args.runs - args.commit_runs
    moments: list[tuple[str, float | None]] = [("commit window (hook)", None)] * args.commit_runs
    moments += [("timed", duration * (0.05 + 1.0 * i / max(timed - 1, 1))) for i in range(timed)]
    order = np.random.default_rng(0).permutation(len(moments))
    print(f"{'run':>3}  {'kill moment':<22} {'at (s)':>7}  {'outcome':<8} {'source intact':<13} "
          f"{'temps left':>10}  {'next write cleaned':<18}")
    broken = 0
    outcomes = {"old": 0, "new": 0}
    finish(convert(small, out))  # the older output
    for run, index in enumerate(order, 1):
        kind, delay = moments[index]
        if digest(out) != old_ref:
            raise SystemExit(f"run {run}: could not restore the older output")
        count_before, _ = leftovers(base)
        flag = base / "paused"
        flag.unlink(missing_ok=True)
        env = ({"DATAKILN_TEST_PAUSE_BEFORE_COMMIT": "120", "DATAKILN_TEST_PAUSE_FLAG": str(flag)}
               if delay is None else None)
        begun = time.perf_counter()
        child = convert(big, out, env)
        if delay is None:
            while not flag.exists():
                if child.poll() is not None:
                    raise SystemExit(f"run {run}: the writer exited before pausing")
                time.sleep(0.005)
        else:
            while time.perf_counter() - begun < delay and child.poll() is None:
                time.sleep(0.002)
        at = time.perf_counter() - begun
        finished_first = child.poll() is not None
        if not finished_first:
            child.send_signal(signal.SIGKILL)
        child.wait()
        found = digest(out)
        outcome = "old" if found == old_ref else "new" if found == new_ref else (
            "MISSING" if found is None else "MIX")
        intact = all(file_state(p) == state for p, state in sources.items())
        temps, temp_bytes = leftovers(base)
        finish(convert(small, out))  # the next write to the same place: restores the older output
        cleaned = leftovers(base)[0] == 0
        ok = outcome in ("old", "new") and intact and cleaned and count_before == 0
        broken += not ok
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        label = kind + (" (exited first)" if finished_first else "")
        print(f"{run:>3}  {label:<22} {at:>7.2f}  {outcome:<8} {'yes' if intact else 'NO':<13} "
              f"{f'{temps} ({temp_bytes / 1e6:.1f} MB)':>10}  {'yes' if cleaned else 'NO':<18}")
    print(f"{args.runs} kills ({args.commit_runs} inside the commit window): {outcomes.get('old', 0)} old, "
          f"{outcomes.get('new', 0)} new, {broken} broken; sources intact: "
          f"{'all' if broken == 0 else 'see table'}")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
