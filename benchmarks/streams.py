"""Streams: no message lost when the consumer is killed -9 ten times; throughput vs a bare loop.

Redis (127.0.0.1:6379) and NATS JetStream (127.0.0.1:4222) must be running (.ci/run starts them).

1. Redis kill test: a producer writes ``--messages`` entries (fields seq, x, cat) to a stream;
   a consumer process (``datakiln.read_stream``, batches of ``--batch``) records every ``seq``
   it processed to a file, one write per batch, before asking for the next batch (which is
   what acknowledges the last one). The parent kills it with SIGKILL at a random point
   ``--kills`` times (seeded) and restarts it: two of three restarts under the same
   consumer name (it re-reads its own pending entries), every third under a new name (the
   dead consumer's entries are claimed with XAUTOCLAIM after 1 s idle). Then the counts:
   every seq processed at least once, none lost, duplicates counted, nothing left pending.
2. Redis throughput: the same stream read by two fresh groups, in this process, rounds
   interleaved: datakiln (XREADGROUP + Arrow batches, XACK pipelined with the next read)
   and the bare redis-py loop (XREADGROUP COUNT=batch, XACK pipelined with the next read,
   entries left as redis-py returns them). Ratio = datakiln msgs/s / bare msgs/s (best round each).
3. NATS kill test: the same with a JetStream durable pull consumer (ack_wait 2 s).

    python benchmarks/streams.py                       # 1,000,000 messages, 10 kills each
    python benchmarks/streams.py --messages 100000     # a quicker run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REDIS = "redis://127.0.0.1:6379/0"
NATS = "nats://127.0.0.1:4222"
STREAM = "datakiln-bench"
NATS_STREAM = "DATAKILN_BENCH"


# -- the consumer process -------------------------------------------------------------------
def consume(url: str, out: str, batch: int, idle_s: float) -> None:
    """Process batches until the stream is idle for ``idle_s``: record seqs, then ask for more."""
    import datakiln

    stream = datakiln.read_stream(url, batch_size=batch, max_wait_ms=100)
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for record in stream.iter_batches(idle_timeout_s=idle_s):
        seq = record.column(record.schema.get_field_index("seq")).to_numpy()
        os.write(fd, np.ascontiguousarray(seq, dtype=np.int64).tobytes())  # "processing"
    stream.commit()
    os.close(fd)
    stream.close()
    print(json.dumps(stream.stats.to_dict()), flush=True)


# -- producing ------------------------------------------------------------------------------
def produce_redis(n: int) -> float:
    import redis

    client = redis.Redis.from_url(REDIS)
    client.delete(STREAM)
    started = time.perf_counter()
    cats = [b"alpha", b"beta", b"gamma", b"delta"]
    for first in range(0, n, 10_000):
        pipe = client.pipeline(transaction=False)
        for seq in range(first, min(first + 10_000, n)):
            pipe.xadd(STREAM, {b"seq": seq, b"x": seq * 0.5, b"cat": cats[seq % 4]})
        pipe.execute()
    assert client.xlen(STREAM) == n
    client.close()
    return time.perf_counter() - started


def produce_nats(n: int) -> float:
    import nats

    async def run() -> None:
        nc = await nats.connect(NATS)
        js = nc.jetstream(publish_async_max_pending=8000)
        try:
            await js.delete_stream(NATS_STREAM)
        except Exception:
            pass
        await js.add_stream(name=NATS_STREAM, subjects=["datakiln.bench"])
        cats = ["alpha", "beta", "gamma", "delta"]
        for seq in range(n):
            body = json.dumps({"seq": seq, "x": seq * 0.5, "cat": cats[seq % 4]}).encode()
            await js.publish_async("datakiln.bench", body)
        await js.publish_async_completed()
        info = await js.stream_info(NATS_STREAM)
        assert info.state.messages == n, info.state
        await nc.close()

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started


# -- the kill test --------------------------------------------------------------------------
def kill_test(name: str, urls: list[str], n: int, kills: int, batch: int, seed: int,
              pending: callable) -> dict:
    """Start, kill -9 at random points and restart the consumer; then count what was processed."""
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="datakiln-streams-"))
    out = folder / "processed.bin"
    out.touch()
    started = time.perf_counter()
    killed = 0
    for run in range(kills + 1):
        url = urls[run % len(urls)].format(run=run)
        child = subprocess.Popen([sys.executable, __file__, "--consume", url, "--out", str(out),
                                  "--batch", str(batch)], stdout=subprocess.PIPE, text=True)
        if run < kills:
            size = out.stat().st_size
            while out.stat().st_size == size and child.poll() is None:  # wait for it to process
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.6))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                killed += 1
            child.wait()
        else:
            child.communicate(timeout=1800)
    seconds = time.perf_counter() - started
    seqs = np.fromfile(out, dtype=np.int64)
    counts = np.bincount(seqs, minlength=n)
    os.unlink(out)
    folder.rmdir()
    return {"broker": name, "messages": n, "kills": killed, "processed": int(seqs.size),
            "lost": int((counts[:n] == 0).sum()), "out_of_range": int((seqs >= n).sum()),
            "duplicates": int(seqs.size - (counts > 0).sum()),
            "seen_twice_or_more": int((counts > 1).sum()), "pending_after": pending(),
            "seconds": seconds}


def redis_pending(group: str) -> callable:
    def pending() -> int:
        import redis

        client = redis.Redis.from_url(REDIS)
        try:
            return int(client.xpending(STREAM, group)["pending"])
        finally:
            client.close()
    return pending


def nats_pending(durable: str) -> callable:
    def pending() -> int:
        import nats

        async def run() -> int:
            nc = await nats.connect(NATS)
            info = await nc.jetstream().consumer_info(NATS_STREAM, durable)
            await nc.close()
            return int(info.num_ack_pending + info.num_pending)
        return asyncio.run(run())
    return pending


# -- throughput -----------------------------------------------------------------------------
def bare_loop(n: int, batch: int, group: str) -> float:
    """redis-py XREADGROUP COUNT=batch, XACK pipelined with the next read; seconds for n messages."""
    import redis

    client = redis.Redis.from_url(REDIS)
    client.xgroup_create(STREAM, group, id="0")
    started = time.perf_counter()
    done, ids = 0, None
    while done < n:
        pipe = client.pipeline(transaction=False)
        if ids:
            pipe.xack(STREAM, group, *ids)
        pipe.xreadgroup(group, "bare", {STREAM: ">"}, count=batch)
        reply = pipe.execute()[-1]
        entries = reply[0][1] if reply else []
        ids = [entry_id for entry_id, _ in entries]
        done += len(entries)
    client.xack(STREAM, group, *ids)
    seconds = time.perf_counter() - started
    client.close()
    return seconds


def datakiln_loop(n: int, batch: int, group: str) -> float:
    """datakiln.read_stream batches (Arrow) over n messages, each acked when the next is asked for."""
    import datakiln

    stream = datakiln.read_stream(f"{REDIS}?stream={STREAM}&group={group}&consumer=dk",
                                  batch_size=batch, max_wait_ms=100)
    started = time.perf_counter()
    rows = 0
    for record in stream.iter_batches():
        rows += record.num_rows
        if stream.stats.messages >= n:
            break
    stream.commit()
    seconds = time.perf_counter() - started
    stream.close()
    assert rows == n, rows
    return seconds


def throughput(n: int, batch: int, rounds: int) -> dict:
    import redis

    client = redis.Redis.from_url(REDIS)
    times: dict[str, list[float]] = {"datakiln": [], "bare": []}
    for who, fn in (("bare", bare_loop), ("datakiln", datakiln_loop)):  # warm-up: imports, kernels
        fn(min(n, 20_000), batch, f"warm-{who}")
        client.xgroup_destroy(STREAM, f"warm-{who}")
    for r in range(rounds):
        for who, fn in (("bare", bare_loop), ("datakiln", datakiln_loop)) if r % 2 == 0 else (
                ("datakiln", datakiln_loop), ("bare", bare_loop)):
            group = f"tput-{who}-{r}"
            times[who].append(fn(n, batch, group))
            client.xgroup_destroy(STREAM, group)
    client.close()
    return times


# -- main -----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--nats-messages", type=int, default=None, help="default: --messages")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per contestant")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--skip-nats", action="store_true")
    parser.add_argument("--skip-kills", action="store_true", help="throughput only")
    parser.add_argument("--consume", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        return consume(args.consume, args.out, args.batch, idle_s=3.0)

    n = args.messages
    print(f"# streams benchmark: {n:,} messages, batch {args.batch}, {args.kills} kills, seed {args.seed}")
    produced = produce_redis(n)
    print(f"redis: produced {n:,} entries in {produced:.1f} s")
    base = f"{REDIS}?stream={STREAM}&group=killtest&claim_idle_ms=1000&claim_every_s=0.5"
    urls = [base + "&consumer=stable", base + "&consumer=stable", base + "&consumer=fresh-{run}"]
    results = [] if args.skip_kills else [
        kill_test("redis", urls, n, args.kills, args.batch, args.seed, redis_pending("killtest"))]
    times = throughput(n, args.batch, args.rounds)
    import redis

    redis.Redis.from_url(REDIS).delete(STREAM)
    if not args.skip_nats and not args.skip_kills:
        nn = args.nats_messages or n
        produced = produce_nats(nn)
        print(f"nats: produced {nn:,} messages in {produced:.1f} s")
        nurl = f"{NATS}?stream={NATS_STREAM}&durable=killtest&ack_wait_s=2"
        results.append(kill_test("nats", [nurl], nn, args.kills, args.batch, args.seed + 1,
                                 nats_pending("killtest")))

    print()
    print("| broker | messages | kills | processed | lost | duplicates | messages seen twice+ | "
          "pending after | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['broker']} | {r['messages']:,} | {r['kills']} | {r['processed']:,} | {r['lost']} | "
              f"{r['duplicates']:,} | {r['seen_twice_or_more']:,} | {r['pending_after']} | "
              f"{r['seconds']:.1f} |")
    print()
    print(f"Redis throughput, {n:,} messages, batch {args.batch}, {args.rounds} rounds each (msgs/s):")
    print("| consumer | median msgs/s | best msgs/s | all rounds (s) |")
    print("|---|---:|---:|---|")
    best, median = {}, {}
    for who in ("bare", "datakiln"):
        best[who] = n / min(times[who])
        median[who] = n / float(np.median(times[who]))
        label = ("bare redis-py XREADGROUP/XACK loop" if who == "bare"
                 else "datakiln.read_stream (Arrow batches)")
        print(f"| {label} | {median[who]:,.0f} | {best[who]:,.0f} | "
              f"{', '.join(f'{t:.2f}' for t in times[who])} |")
    ok = all(r["lost"] == 0 and r["pending_after"] == 0 for r in results)
    print()
    print(f"no message lost in any kill test: {ok}")
    print(f"datakiln / bare redis-py loop throughput: {median['datakiln'] / median['bare']:.2f}x "
          f"(median of {args.rounds} interleaved rounds; best {best['datakiln'] / best['bare']:.2f}x)")


if __name__ == "__main__":
    main()
