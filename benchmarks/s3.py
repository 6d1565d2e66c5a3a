"""Parquet over s3:// against local disk, and against pyarrow's own S3 client, in one run.

The S3 server is moto's (``moto_server``, a Python HTTP server) started by this script on
127.0.0.1 in its own process: a **loopback moto server, not AWS**. Its figures measure
datakiln's object-store path (fsspec/s3fs, multipart uploads, the manifest commit) and the
server's own overhead, not network bandwidth; on AWS, throughput is set by the network and
by how many objects are read at once.

Generates a ``--rows`` × 12-column table (benchmarks/_tables.py) in memory, then times,
``--repeats`` times interleaved (medians reported): writing it as one Parquet object and as
``--parts`` objects (committed by the manifest), reading each back with ``datakiln.read``,
and the same one-object write and read through ``pyarrow.fs.S3FileSystem`` (Arrow's C++ S3
client) as the peer. MB/s counts the table's in-memory Arrow bytes.

    python benchmarks/s3.py [--rows 1000000] [--repeats 3] [--parts 8]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
from _tables import mixed_batch

import datakiln


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_moto(port: int) -> subprocess.Popen:
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("moto_server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", type=int, default=8)
    args = parser.parse_args()

    port = _free_port()
    server = _start_moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret",
                      AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1")
    try:
        import s3fs

        s3fs.S3FileSystem().mkdir("bench")
        native = pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", region="us-east-1",
                                   access_key="bench", secret_key="bench-secret")
        table = mixed_batch(0, args.rows, seed=0)
        megabytes = table.nbytes / 1e6
        ds = datakiln.from_arrow(table)
        local = Path(tempfile.mkdtemp(prefix="kiln-s3-bench-"))
        per_file = -(-args.rows // args.parts)
        cases = {
            "write 1 file, local disk (datakiln)": lambda: ds.write(local / "one.parquet"),
            "write 1 object, s3:// (datakiln)": lambda: ds.write("s3://bench/one.parquet"),
            "write 1 object, s3 (pyarrow S3FileSystem)": lambda: pq.write_table(
                table, "bench/native.parquet", filesystem=native, compression="zstd"),
            f"write {args.parts} files, local disk (datakiln)": lambda: ds.write(
                local / "parts", rows_per_file=per_file),
            f"write {args.parts} objects + manifest, s3:// (datakiln)": lambda: ds.write(
                "s3://bench/parts", rows_per_file=per_file),
            "read 1 file, local disk (datakiln)": lambda: datakiln.read(local / "one.parquet").to_arrow(),
            "read 1 object, s3:// (datakiln)": lambda: datakiln.read("s3://bench/one.parquet").to_arrow(),
            "read 1 object, s3 (pyarrow S3FileSystem)": lambda: pq.read_table(
                "bench/native.parquet", filesystem=native),
            f"read {args.parts} objects via manifest, s3:// (datakiln)": lambda: datakiln.read(
                "s3://bench/parts").to_arrow(),
        }
        runs: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, case in cases.items():
                start = time.perf_counter()
                case()
                runs[name].append(time.perf_counter() - start)
        stored = s3fs.S3FileSystem().size("bench/one.parquet") / 1e6
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"Parquet over a loopback moto S3 server (not AWS) vs local disk: {args.rows:,} rows x "
          f"{table.num_columns} columns, {megabytes:.0f} MB in Arrow, {stored:.0f} MB as zstd Parquet; "
          f"median of {args.repeats}")
    print(f"{'operation':<52} {'seconds':>8} {'MB/s':>8}")
    medians = {name: statistics.median(times) for name, times in runs.items()}
    for name, seconds in medians.items():
        print(f"{name:<52} {seconds:>8.2f} {megabytes / seconds:>8.0f}")
    ours = medians["read 1 object, s3:// (datakiln)"]
    peer = medians["read 1 object, s3 (pyarrow S3FileSystem)"]
    disk = medians["read 1 file, local disk (datakiln)"]
    write_ours = medians["write 1 object, s3:// (datakiln)"]
    write_peer = medians["write 1 object, s3 (pyarrow S3FileSystem)"]
    print(f"headline: datakiln s3:// Parquet read {megabytes / ours:.0f} MB/s = {peer / ours:.2f}x "
          f"pyarrow's S3FileSystem ({megabytes / peer:.0f} MB/s), write {write_peer / write_ours:.2f}x "
          f"it, on the same loopback moto server; local disk read {megabytes / disk:.0f} MB/s")


if __name__ == "__main__":
    main()
