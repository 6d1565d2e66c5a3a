"""The shared cache directory: byte limit, LRU eviction, entries in use kept, hit/miss counts."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import datakiln
from datakiln.dataset._cache_store import CacheStore, default_cache_dir
from datakiln.dataset.cache import cache_stats
from datakiln.errors import InvalidArgumentError

KB = 1000


def put(store: CacheStore, key: str, size: int = 100 * KB) -> None:
    with store.build(key) as folder:
        (folder / "blob.bin").write_bytes(b"x" * size)


def age(store: CacheStore, key: str, seconds_ago: float) -> None:
    """Set an entry's last use (tests must not sleep to order entries)."""
    when = time.time() - seconds_ago
    os.utime(store.entry_path(key) / "entry.json", (when, when))


def keys(store: CacheStore) -> set[str]:
    return {key for key, _, _ in store.entries()}


def test_the_least_recently_used_entries_go_first(tmp_path: Path) -> None:
    store = CacheStore(tmp_path, cache_limit=350 * KB)
    for index, key in enumerate(["a", "b", "c"]):
        put(store, key)
        age(store, key, 100 - index)  # a oldest, then b, then c
    store.open("a").close()  # a used just now: b becomes the least recently used
    put(store, "d")
    assert keys(store) == {"a", "c", "d"} and store.evictions == 1
    assert store.size() <= 350 * KB
    assert not store.entry_path("b").exists() and store.open("b") is None
    assert store.stats["total_evictions"] == 1


def test_eviction_runs_until_the_total_fits(tmp_path: Path) -> None:
    store = CacheStore(tmp_path, cache_limit=None)
    for index, key in enumerate("abcde"):
        put(store, key)
        age(store, key, 100 - index)
    assert store.evict(limit=250 * KB) == ["a", "b", "c"]
    assert keys(store) == {"d", "e"} and store.size() == sum(s for _, s, _ in store.entries())


def test_an_open_entry_is_never_evicted(tmp_path: Path) -> None:
    store = CacheStore(tmp_path, cache_limit=250 * KB)
    put(store, "a")
    put(store, "b")
    age(store, "a", 100)
    age(store, "b", 50)
    with store.open("a"):
        age(store, "a", 100)  # still the oldest, but open
        put(store, "c")
        assert keys(store) == {"a", "c"}  # b went instead
    put(store, "d")  # closed now: a is the oldest and goes
    assert "a" not in keys(store)


def test_an_entry_open_in_another_process_is_kept(tmp_path: Path) -> None:
    store = CacheStore(tmp_path, cache_limit=250 * KB)
    put(store, "a")
    put(store, "b")
    age(store, "a", 100)
    age(store, "b", 50)
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, pathlib\n"
        "from datakiln.dataset._cache_store import CacheStore\n"
        f"entry = CacheStore({str(tmp_path)!r}, None).open('a')\n"
        "assert entry is not None\n"
        f"pathlib.Path({str(ready)!r}).write_text('ok')\n"
        "sys.stdin.read()\n"  # hold the entry until the parent closes our input
        "entry.close()\n")], stdin=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not ready.exists():
            assert holder.poll() is None and time.time() < deadline
            time.sleep(0.05)
        age(store, "a", 100)
        put(store, "c")  # over the limit: a is the oldest but open elsewhere
        assert keys(store) == {"a", "c"}
        assert store.evict(limit=0, keep={"c"}) == []  # a is locked: nothing may go
    finally:
        holder.communicate(b"", timeout=60)
    assert holder.returncode == 0
    assert store.evict(limit=0, keep={"c"}) == ["a"]  # released: now it goes


def test_eviction_deletes_only_what_it_wrote(tmp_path: Path) -> None:
    store = CacheStore(tmp_path, cache_limit=None)
    put(store, "a")
    foreign = store.entry_path("a") / "notes.txt"
    foreign.write_text("someone else's", encoding="utf-8")
    (tmp_path / "entries" / "stranger").mkdir()
    (tmp_path / "entries" / "stranger" / "data.bin").write_bytes(b"1" * 500 * KB)
    assert store.evict(limit=0) == ["a"]
    assert foreign.read_text(encoding="utf-8") == "someone else's"
    assert not (store.entry_path("a") / "blob.bin").exists()
    assert (tmp_path / "entries" / "stranger" / "data.bin").stat().st_size == 500 * KB


def test_a_failed_build_leaves_no_entry(tmp_path: Path) -> None:
    store = CacheStore(tmp_path)
    with pytest.raises(RuntimeError, match="boom"), store.build("a") as folder:
        (folder / "half.bin").write_bytes(b"1" * 10)
        raise RuntimeError("boom")
    assert not store.contains("a") and not list((tmp_path / "tmp").iterdir())


def test_bad_limit_and_key_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="cache_limit must be a size"):
        CacheStore(tmp_path, cache_limit="lots")
    with pytest.raises(InvalidArgumentError, match="cache key"):
        CacheStore(tmp_path).open("../escape")


def test_default_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATAKILN_CACHE_DIR", str(tmp_path / "kc"))
    assert default_cache_dir() == tmp_path / "kc"
    monkeypatch.delenv("DATAKILN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "datakiln"


def test_dataset_cache_counts_hits_and_misses_and_serves_the_same_rows(tmp_path: Path) -> None:
    import pyarrow as pa

    table = datakiln.from_arrow(pa.table({"x": np.arange(50_000), "y": np.arange(50_000) * 0.5}))
    first = table.cache(cache_dir=tmp_path)
    second = table.cache(cache_dir=tmp_path)
    assert first.to_arrow().equals(table.to_arrow()) and second.to_arrow().equals(table.to_arrow())
    stats = cache_stats(tmp_path)
    assert (stats["total_misses"], stats["total_hits"], stats["entries"]) == (1, 1, 1)
    changed = datakiln.from_arrow(table.to_arrow().slice(1))
    changed.cache(cache_dir=tmp_path)
    assert cache_stats(tmp_path)["total_misses"] == 2 and cache_stats(tmp_path)["entries"] == 2


def test_a_cached_dataset_in_use_is_not_evicted(tmp_path: Path) -> None:
    import pyarrow as pa

    data = datakiln.from_arrow(pa.table({"x": np.arange(100_000)}))
    cached = data.cache(cache_dir=tmp_path)
    store = CacheStore(tmp_path, None)
    assert store.evict(limit=0) == []  # the Dataset holds its entry
    assert cached.to_arrow().column("x").to_pylist()[-1] == 99_999
    del cached
    gc.collect()
    assert len(store.evict(limit=0)) == 1 and store.size() == 0


def test_dataset_cache_with_a_limit_evicts_older_entries(tmp_path: Path) -> None:
    import pyarrow as pa

    small = [datakiln.from_arrow(pa.table({"x": np.arange(20_000) + i})) for i in range(3)]
    for dataset in small:
        dataset.cache(cache_dir=tmp_path, cache_limit="400kB")  # ~160 kB each, released at once
        gc.collect()
    stats = cache_stats(tmp_path)
    assert stats["entries"] == 2 and stats["bytes"] <= 400 * KB and stats["total_evictions"] == 1


def test_refreshing_an_entry_open_in_this_process_is_an_error_not_a_hang(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    from datakiln.dataset import _cache_store
    from datakiln.errors import WriteError

    monkeypatch.setattr(_cache_store, "LOCK_WAIT_SECONDS", 0.2)
    data = datakiln.from_arrow(pa.table({"x": np.arange(1000)}))
    held = data.cache(cache_dir=tmp_path)
    with pytest.raises(WriteError, match="is open"):
        data.cache(cache_dir=tmp_path, refresh=True)
    assert held.count() == 1000 and not list((tmp_path / "tmp").iterdir())
