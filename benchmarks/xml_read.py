"""XML read: datakiln's streaming reader on a 2 GB file (peak RSS) and against pandas.read_xml.

Generates an XML file of ``--gb`` gigabytes (default 2) of ``<row>`` records (attributes,
text, numbers, dates, a repeated child, a nested child) into a temporary folder, then:

1. reads the whole file with ``datakiln.read(path, record="row")`` batch by batch in a child
   process, once (it takes minutes), and reports seconds, MB/s and the child's peak RSS
   from ``getrusage``;
2. on a ``--slice-mb`` slice (default 50 MB) of the same records, times datakiln
   (``to_arrow``) and ``pandas.read_xml(parser=...)`` (lxml when installed, else the
   standard library's etree), each ``--repeats`` times in its own process, interleaved,
   and reports medians and peak RSS.

The last line is the slice ratio (pandas seconds / datakiln seconds). The files are
deleted at the end.

    flock /tmp/datakiln-heavy.lock python benchmarks/xml_read.py [--gb 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CITIES = ["Lisbon", "Osaka", "Quito", "Tromsø", "Accra", "Perth", "Lyon", "Pune"]


def generate(path: Path, target_bytes: int) -> int:
    """Write ``<rows>`` of records until the file holds ``target_bytes``; return rows."""
    rows = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<rows>\n')
        written = 0
        while written < target_bytes:
            parts = []
            for i in range(rows, rows + 10_000):
                parts.append(
                    f'<row id="{i}" grade="{"ABCD"[i % 4]}"><name>user {i * 7919 % 100003}</name>'
                    f"<city>{_CITIES[i % 8]}</city><age>{18 + i % 60}</age>"
                    f"<score>{(i * 0.37) % 100:.3f}</score><active>{'true' if i % 3 else 'false'}"
                    f"</active><joined>20{10 + i % 14}-0{1 + i % 9}-1{i % 10}</joined>"
                    f"<tag>t{i % 5}</tag><tag>u{i % 7}</tag>"
                    f'<geo><lat>{i % 90}.5</lat><lon>{i % 180}.25</lon></geo></row>\n')
            chunk = "".join(parts)
            out.write(chunk)
            written += len(chunk.encode("utf-8"))
            rows += 10_000
        out.write("</rows>\n")
    return rows


def child(contestant: str, path: str, stream: bool) -> None:
    start = time.perf_counter()
    if contestant == "datakiln":
        import datakiln

        dataset = datakiln.read(path, record="row")
        if stream:
            rows = sum(batch.num_rows for batch in dataset.iter_batches())
        else:
            rows = dataset.to_arrow().num_rows
    else:
        import pandas as pd

        parser = "lxml" if importlib.util.find_spec("lxml") else "etree"
        rows = len(pd.read_xml(path, xpath="./row", parser=parser))
        contestant = f"pandas.read_xml ({parser})"
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(json.dumps({"name": contestant, "seconds": seconds, "rows": rows, "peak_mb": peak}))


def run_child(contestant: str, path: Path, stream: bool = False) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", contestant, str(path)]
    if stream:
        command.append("--stream")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{contestant} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--slice-mb", type=float, default=50.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("CONTESTANT", "PATH"))
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.stream)
        return
    folder = Path(tempfile.mkdtemp(prefix="kiln-xml-"))
    try:
        big, small = folder / "big.xml", folder / "slice.xml"
        t0 = time.perf_counter()
        rows = generate(big, int(args.gb * 1e9))
        size = big.stat().st_size
        print(f"generated {size / 1e9:.2f} GB, {rows:,} records in "
              f"{time.perf_counter() - t0:.0f} s")
        slice_rows = generate(small, int(args.slice_mb * 1e6))
        small_mb = small.stat().st_size / 1e6
        whole = run_child("datakiln", big, stream=True)
        assert whole["rows"] == rows, (whole["rows"], rows)
        print("\n| file | reader | rows | seconds | MB/s | peak RSS MB |\n|---|---|---|---|---|---|")
        print(f"| {size / 1e9:.2f} GB | datakiln (iter_batches) | {rows:,} | "
              f"{whole['seconds']:.1f} | {size / 1e6 / whole['seconds']:.1f} | "
              f"{whole['peak_mb']:.0f} |")
        runs: dict[str, list[dict[str, object]]] = {}
        for _ in range(args.repeats):
            for contestant in ("datakiln", "pandas"):
                result = run_child(contestant, small)
                assert result["rows"] == slice_rows, result
                runs.setdefault(str(result["name"]), []).append(result)
        medians = {}
        for name, results in runs.items():
            seconds = statistics.median(float(r["seconds"]) for r in results)
            peak = statistics.median(float(r["peak_mb"]) for r in results)
            medians[name] = seconds
            print(f"| {small_mb:.0f} MB slice | {name} (to_arrow / DataFrame, median of "
                  f"{len(results)}) | {slice_rows:,} | {seconds:.2f} | "
                  f"{small_mb / seconds:.1f} | {peak:.0f} |")
        peer = next(n for n in medians if n != "datakiln")
        print(f"\ndatakiln reads the {small_mb:.0f} MB slice "
              f"{medians[peer] / medians['datakiln']:.2f}x as fast as {peer}; "
              f"2 GB peak RSS {whole['peak_mb']:.0f} MB")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
