"""profile + Cleaner on a generated 20,000,000-row Parquet: local threads vs Ray local vs a 3-node Ray.

The same calls (``ds.profile()``, ``Cleaner().fit(ds)``, ``cleaner.transform(ds,
output=...)``) run in three fresh child processes: on datakiln's local thread pool, inside
``with datakiln.engine("ray")`` on a local Ray (``ray.init(num_cpus=2)``), and on a simulated
three-node cluster (``ray.cluster_utils.Cluster``: a head and two worker nodes of one CPU
each, all on this machine). Reported per run: Ray start-up seconds (apart), seconds per
stage, peak RSS of the driver, of the largest Ray worker and of all processes together
(sampled from ``/proc`` every 0.2 s), and the bytes Ray spilled from its object store (the
files seen in its spill directory, sampled with the memory). The
last lines print the overhead ratios (Ray / local threads) and a paper estimate for 1 TB on
32 nodes from the measured per-core throughput.

    python benchmarks/ray_scale.py [--rows 20000000] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP = 500_000

CHILD = textwrap.dedent(r"""
    import json, os, sys, threading, time
    mode, path, out, spill = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    os.makedirs(spill, exist_ok=True)
    spilling = {"object_spilling_config": json.dumps(
        {"type": "filesystem", "params": {"directory_path": spill}})}
    spilled = {}  # every spill file seen, by name: its largest size

    def rss_of(pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def children():
        parents = {}
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        parents[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except OSError:
                    pass
        mine, grew = {os.getpid()}, True
        while grew:
            new = {p for p, parent in parents.items() if parent in mine} - mine
            mine |= new
            grew = bool(new)
        return mine - {os.getpid()}

    def is_worker(pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                text = f.read()
            return b"default_worker" in text or text.startswith(b"ray::")
        except OSError:
            return False

    peak = {"driver": 0, "worker": 0, "total": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            kids = children()
            driver = rss_of(os.getpid())
            workers = [rss_of(p) for p in kids if is_worker(p)]
            total = driver + sum(rss_of(p) for p in kids)
            peak["driver"] = max(peak["driver"], driver)
            peak["worker"] = max([peak["worker"], *workers])
            peak["total"] = max(peak["total"], total)
            for root, _, files in os.walk(spill):
                for name in files:
                    try:
                        size = os.path.getsize(os.path.join(root, name))
                    except OSError:
                        continue
                    key = os.path.join(root, name)
                    spilled[key] = max(spilled.get(key, 0), size)
            stop.wait(0.2)

    import datakiln
    from datakiln.clean import Cleaner
    result = {"mode": mode}
    started = time.perf_counter()
    cluster = None
    if mode != "local":
        import ray
        if mode == "ray-cluster":
            from ray.cluster_utils import Cluster
            cluster = Cluster(initialize_head=True, head_node_args={
                "num_cpus": 1, "include_dashboard": False, "_system_config": spilling})
            for _ in range(2):
                cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False)
        else:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _system_config=spilling)
        ray.get([ray.remote(lambda: 0).remote() for _ in range(4)])  # workers up
    result["startup"] = time.perf_counter() - started
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    engine = datakiln.engine("ray") if mode != "local" else datakiln.engine("local")
    with engine as running:
        ds = datakiln.read(path)
        t = time.perf_counter()
        profile = ds.profile()
        result["profile"] = time.perf_counter() - t
        t = time.perf_counter()
        cleaner = Cleaner().fit(ds)
        result["clean_fit"] = time.perf_counter() - t
        t = time.perf_counter()
        cleaned = cleaner.transform(ds, output=out)
        result["clean_transform"] = time.perf_counter() - t
        result["nodes"] = len(running.nodes_used) if running is not None else 1
        result["tasks"] = sum(running.nodes_used.values()) if running is not None else 0
    stop.set()
    sampler.join()
    result["rows"] = profile.rows
    result["rows_out"] = cleaned.count()
    result["x_mean"] = profile["x"].mean
    result["peak"] = peak
    result["spilled"] = sum(spilled.values())
    if mode != "local":
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
    print(json.dumps(result))
""")


def generate(path: Path, rows: int) -> None:
    """``rows`` rows of five columns (floats with nulls, ints, a 20-value category, a flag)."""
    rng = np.random.default_rng(0)
    categories = np.array([f"group-{i:02d}" for i in range(20)])
    schema = None
    writer = None
    try:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            x = rng.normal(50, 10, n)
            table = pa.table({
                "id": np.arange(start, start + n, dtype=np.int64),
                "x": pa.array(x, mask=rng.random(n) < 0.01),
                "y": rng.integers(0, 1000, n),
                "group": pa.DictionaryArray.from_arrays(rng.integers(0, 20, n).astype(np.int32),
                                                        categories).cast(pa.string()),
                "flag": rng.random(n) < 0.3,
            })
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(path, schema, compression="zstd")
            writer.write_table(table, row_group_size=ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()


def run(mode: str, data: Path, out: Path) -> dict:
    spill = out.parent / f"spill_{mode}"
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(data), str(out), str(spill)],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--data", type=Path, default=None, help="reuse/keep the generated file here")
    parser.add_argument("--node-cores", type=int, default=16, help="cores per node of the paper estimate")
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="kiln-ray-"))
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"ray_{args.rows}.parquet"
    if not data.exists():
        started = time.perf_counter()
        generate(data, args.rows)
        print(f"generated {data} ({data.stat().st_size / 2**20:.0f} MiB) "
              f"in {time.perf_counter() - started:.0f} s")
    file = pq.ParquetFile(data)
    decoded_per_row = file.read_row_group(0).nbytes / file.metadata.row_group(0).num_rows
    parquet_per_row = data.stat().st_size / file.metadata.num_rows
    results = [run(mode, data, folder / f"cleaned_{mode}.parquet")
               for mode in ("local", "ray-local", "ray-cluster")]

    mb = 2**20
    print(f"\n{args.rows:,} rows x 5 columns ({data.stat().st_size / mb:.0f} MiB Parquet, "
          f"{file.num_row_groups} row groups); profile + Cleaner().fit + transform(output=Parquet)")
    header = ("mode", "start s", "profile s", "fit s", "transform s", "work s", "rows/s", "driver MiB",
              "worker MiB", "all MiB", "spilled MiB", "nodes", "tasks")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in results:
        r["work"] = r["profile"] + r["clean_fit"] + r["clean_transform"]
        print(" | ".join([
            r["mode"], f"{r['startup']:.1f}", f"{r['profile']:.1f}", f"{r['clean_fit']:.1f}",
            f"{r['clean_transform']:.1f}", f"{r['work']:.1f}", f"{r['rows'] / r['work']:,.0f}",
            f"{r['peak']['driver'] / mb:,.0f}", f"{r['peak']['worker'] / mb:,.0f}",
            f"{r['peak']['total'] / mb:,.0f}", f"{r['spilled'] / mb:,.0f}", str(r["nodes"]),
            str(r["tasks"])]))
    local, ray_local, cluster = results
    same = all(r["rows"] == local["rows"] and r["rows_out"] == local["rows_out"]
               and abs(r["x_mean"] - local["x_mean"]) <= 1e-9 * abs(local["x_mean"]) for r in results)
    print(f"\nsame rows, cleaned rows and mean everywhere: {same}")
    cores = 2
    per_core = local["rows"] / local["work"] / cores
    rows_tb = 1e12 / parquet_per_row
    nodes = 32
    ideal = rows_tb / (per_core * args.node_cores * nodes)
    print(f"per-core throughput (local threads, {cores} cores): {per_core:,.0f} rows/s; "
          f"{parquet_per_row:.1f} B/row Parquet, {decoded_per_row:.1f} B/row decoded")
    print(f"paper estimate, 1 TB Parquet = {rows_tb:,.0f} rows on {nodes} nodes x {args.node_cores} cores: "
          f"{ideal / 60:,.1f} min at local per-core speed, "
          f"{ideal * cluster['work'] / local['work'] / 60:,.1f} min with this run's 3-node overhead")
    print(f"overhead: Ray local / local threads = {ray_local['work'] / local['work']:.2f}x; "
          f"3-node Ray / local threads = {cluster['work'] / local['work']:.2f}x")


if __name__ == "__main__":
    main()
