"""Cold, interleaved timing: every contestant in a fresh process, rounds interleaved, medians + spread.

A contestant is a child command (a ``python -c`` script and its arguments, optionally an
environment such as ``PYTHONPATH`` pointing at an older checkout for a before/after row).
Each round runs every contestant once, in turn, so background load hits all of them
alike; the child times its own work and prints one JSON line holding at least ``wall``
(``time.perf_counter`` seconds) and ``cpu`` (``time.process_time`` seconds: all threads of
the process). :func:`summary` gives the median and the spread (min–max) of each field.
Inputs are read by the caller once beforehand so the OS page cache is equally warm.

    CHILD = TIMER + "start(); work(); stop(rows=n)"
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

#: prepended to every child script: ``start()`` then ``stop(**fields)`` prints the JSON line
TIMER = """
import json as _json, resource as _resource, time as _time
def start():
    global _wall, _cpu
    _wall, _cpu = _time.perf_counter(), _time.process_time()
def stop(**fields):
    wall, cpu = _time.perf_counter() - _wall, _time.process_time() - _cpu
    peak = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss * 1024
    print(_json.dumps({"wall": wall, "cpu": cpu, "peak": peak, **fields}))
"""


@dataclass
class Contestant:
    """One row of a table: a child script, its arguments and extra environment."""

    name: str
    code: str
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def run_once(self) -> dict[str, Any]:
        env = {**os.environ, **self.env}
        done = subprocess.run([sys.executable, "-c", TIMER + self.code, *self.argv], capture_output=True,
                              text=True, env=env)
        if done.returncode:
            raise SystemExit(f"{self.name} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        self.runs.append(result)
        return result

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)

    def spread(self, key: str) -> tuple[float, float]:
        values = [r[key] for r in self.runs]
        return min(values), max(values)


def interleaved(contestants: list[Contestant], rounds: int) -> list[Contestant]:
    """Run every contestant ``rounds`` times, round-robin; returns them with their runs."""
    for _ in range(rounds):
        for contestant in contestants:
            contestant.run_once()
    return contestants


def before_env(before: str | None) -> dict[str, str]:
    """The environment of a "before" row: ``PYTHONPATH`` at an older checkout's ``src``."""
    return {"PYTHONPATH": before} if before else {}


def table(contestants: list[Contestant], rows_key: str | None = None, unit: str = "M rows/s") -> str:
    """A Markdown table: wall and CPU medians with their spread, and rows per second of wall time."""
    head = f"| {'contestant':44} | {'wall s (median, min–max)':>26} | {'CPU s (median, min–max)':>26} |"
    if rows_key:
        head += f" {unit + ' (wall)':>16} |"
    lines = [head, "|" + "|".join("-" * len(p) for p in head.split("|")[1:-1]) + "|"]
    for c in contestants:
        (wl, wh), (cl, ch) = c.spread("wall"), c.spread("cpu")
        line = (f"| {c.name:44} | {c.median('wall'):8.3f} ({wl:6.3f}–{wh:6.3f}) | "
                f"{c.median('cpu'):8.3f} ({cl:6.3f}–{ch:6.3f}) |")
        if rows_key:
            line += f" {c.median(rows_key) / c.median('wall') / 1e6:16.2f} |"
        lines.append(line)
    return "\n".join(lines)
