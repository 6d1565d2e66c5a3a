import numpy as np
import pyarrow as pa
import pytest

import datakiln
from datakiln.errors import InvalidArgumentError, MemoryBudgetError


@pytest.fixture
def numbered(tmp_path):
    table = pa.table({"i": np.arange(10_007), "f": np.arange(10_007) / 2,
                      "c": pa.array(["red", "green", None, "blue"] * 2501 + ["red"] * 3)})
    return datakiln.from_arrow(table).cache(tmp_path / "cache.arrow")


def _epoch(loader):
    return [batch["i"].copy() for batch in loader]


def test_same_seed_same_batches_and_epochs_differ(numbered):
    first = _epoch(numbered.loader(256, seed=3))
    again = _epoch(numbered.loader(256, seed=3, num_threads=1, prefetch=0))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    loader = numbered.loader(256, seed=3)
    loader.set_epoch(1)
    assert not np.array_equal(np.concatenate(_epoch(loader)), np.concatenate(first))
    assert sorted(np.concatenate(first).tolist()) == list(range(10_007))  # a permutation
    unshuffled = np.concatenate(_epoch(numbered.loader(256, shuffle=False)))
    assert np.array_equal(unshuffled, np.arange(10_007))


@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_cover_the_epoch_exactly_once(numbered, world_size, drop_last):
    loaders = [numbered.loader(100, seed=1, rank=r, world_size=world_size, drop_last=drop_last,
                               even_batches="spread") for r in range(world_size)]
    per_rank = [_epoch(loader) for loader in loaders]
    assert all(len(loader) == len(batches) for loader, batches in zip(loaders, per_rank))
    assert min(b.size for batches in per_rank for b in batches) > 0  # never a 0-row batch
    seen = np.concatenate([np.concatenate(b) for b in per_rank])
    assert len(np.unique(seen)) == len(seen)  # no row twice
    if drop_last:
        assert len({len(batches) for batches in per_rank}) == 1  # same number of batches
        assert len(seen) == 10_007 // (100 * world_size) * 100 * world_size
        assert {b.size for batches in per_rank for b in batches} == {100}
    else:
        assert sorted(seen.tolist()) == list(range(10_007))  # every row exactly once
        counts = [len(batches) for batches in per_rank]
        assert max(counts) - min(counts) <= 1


@pytest.mark.parametrize("world_size", [2, 3, 8])
def test_padded_ranks_get_equal_full_batches(numbered, world_size):
    """The default for world_size > 1: DistributedSampler's padding, every batch full."""
    loaders = [numbered.loader(100, seed=1, rank=r, world_size=world_size) for r in range(world_size)]
    per_rank = [_epoch(loader) for loader in loaders]
    steps = -(-10_007 // (100 * world_size))
    assert [len(b) for b in per_rank] == [steps] * world_size == [len(x) for x in loaders]
    assert {b.size for batches in per_rank for b in batches} == {100}
    seen = np.concatenate([np.concatenate(b) for b in per_rank])
    assert sorted(set(seen.tolist())) == list(range(10_007))  # every row at least once
    repeated = steps * 100 * world_size - 10_007
    order = numbered.loader(100 * world_size, seed=1).indices(0)  # the epoch's first positions
    assert len(seen) - len(np.unique(seen)) == repeated  # only the padding repeats rows
    if repeated <= 100 * world_size:  # the padding is the epoch's first positions
        counts = np.bincount(seen, minlength=10_007)
        assert set(np.nonzero(counts == 2)[0].tolist()) == set(order[:repeated].tolist())


@pytest.mark.parametrize("even_batches", ["default", "pad", "spread", "drop_last"])
def test_803_rows_8_ranks_never_a_zero_row_batch(even_batches):
    """The reported case: 803 rows, batches of 100, 8 ranks (5 ranks got an empty batch)."""
    ds = datakiln.from_arrow(pa.table({"i": np.arange(803)}))
    options = ({"drop_last": True} if even_batches == "drop_last" else {} if even_batches == "default"
               else {"even_batches": even_batches})
    per_rank = [_epoch(ds.loader(100, seed=0, rank=r, world_size=8, **options)) for r in range(8)]
    sizes = [[b.size for b in batches] for batches in per_rank]
    assert min(min(s) for s in sizes) > 0
    seen = np.concatenate([np.concatenate(b) for b in per_rank])
    if even_batches in ("pad", "default"):  # pad is the default for world_size > 1
        assert sizes == [[100, 100]] * 8 and set(seen.tolist()) == set(range(803))
    elif even_batches == "spread":
        assert sizes == [[100, 1]] * 3 + [[100]] * 5 and sorted(seen.tolist()) == list(range(803))
    else:
        assert sizes == [[100]] * 8 and len(set(seen.tolist())) == 800


def test_resume_after_k_batches_is_bit_for_bit(numbered):
    full = _epoch(numbered.loader(512, seed=5))
    loader = numbered.loader(512, seed=5)
    head = []
    for batch in loader:
        head.append(batch["i"].copy())
        if len(head) == 7:
            break
    state = loader.state_dict()
    assert state == {"epoch": 0, "batches": 7, "samples": 7 * 512}
    resumed = numbered.loader(512, seed=5, num_threads=4, prefetch=5)  # other threads
    resumed.load_state_dict(state)
    tail = _epoch(resumed)
    assert all(np.array_equal(a, b) for a, b in zip(head + tail, full, strict=True))


def test_formats_and_categories(numbered):
    numpy_batch = next(iter(numbered.loader(8, shuffle=False)))
    loader = numbered.loader(8, shuffle=False)
    assert loader.categories == {"c": ["blue", "green", "red"]}
    assert numpy_batch["c"].tolist() == [2, 1, -1, 0, 2, 1, -1, 0]  # codes, -1 for missing
    assert numpy_batch["f"].dtype == np.float64
    arrow = next(iter(numbered.loader(8, shuffle=False, format="arrow")))
    assert isinstance(arrow, pa.RecordBatch) and arrow["i"].to_pylist() == list(range(8))
    frame = next(iter(numbered.loader(8, shuffle=False, format="pandas", columns=["i"])))
    assert list(frame.columns) == ["i"] and frame["i"].tolist() == list(range(8))


def test_stats_and_progress(numbered):
    seen = []
    loader = numbered.loader(1000, on_progress=seen.append)
    list(loader)
    stats = loader.stats()
    assert stats["rows"] == 10_007 == sum(seen) and stats["batches"] == len(loader) == 11
    assert stats["first_batch_seconds"] is not None and stats["first_batch_seconds"] < 1


def test_cache_is_reused_until_the_source_changes(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("a\n1\n2\n")
    first = datakiln.read(csv).cache(tmp_path / "c.arrow")
    stamp = (tmp_path / "c.arrow").stat().st_mtime_ns
    datakiln.read(csv).cache(tmp_path / "c.arrow")
    assert (tmp_path / "c.arrow").stat().st_mtime_ns == stamp  # reused
    csv.write_text("a\n1\n2\n3\n")
    assert datakiln.read(csv).cache(tmp_path / "c.arrow").count() == 3  # rebuilt
    assert first.source.name.endswith("c.arrow")


def test_loader_errors(numbered, tmp_path):
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        numbered.loader(0)
    with pytest.raises(InvalidArgumentError, match="rank"):
        numbered.loader(8, rank=2, world_size=2)
    with pytest.raises(InvalidArgumentError, match="format"):
        numbered.loader(8, format="tensorflow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": np.arange(100_000)}), tmp_path / "big.parquet")
    with pytest.raises(MemoryBudgetError, match=r"shuffle buffer"):
        datakiln.read(tmp_path / "big.parquet").loader(50_000, memory_budget="100kB")


def test_torch_batches_and_dataloader_workers_resume_exactly(numbered):
    import torch
    batch = next(iter(numbered.loader(16, seed=2, format="torch")))
    assert isinstance(batch["i"], torch.Tensor) and batch["i"].dtype == torch.int64
    stamps = pa.table({"t": pa.array(np.arange(10).astype("datetime64[s]"))})
    ticks = next(iter(datakiln.from_arrow(stamps).loader(10, shuffle=False, format="torch")))
    assert ticks["t"].tolist() == list(range(10))
    full = [b["i"].copy() for b in numbered.loader(500, seed=2)]
    for workers in (0, 2):
        loader = numbered.loader(500, seed=2)
        batches = list(torch.utils.data.DataLoader(loader.torch_dataset(), batch_size=None,
                                                   num_workers=workers))
        # every column of every batch the DataLoader delivered is a tensor
        assert all(isinstance(b[name], torch.Tensor) for b in batches for name in ("i", "f", "c"))
        got = [b["i"].numpy() for b in batches]
        assert all(np.array_equal(a, b) for a, b in zip(got, full, strict=True)), workers
    resumed = numbered.loader(500, seed=2)
    resumed.load_state_dict({"epoch": 0, "batches": 5})
    tail = torch.utils.data.DataLoader(resumed.torch_dataset(), batch_size=None, num_workers=2)
    got = [np.asarray(b["i"]) for b in tail]
    assert all(np.array_equal(a, b) for a, b in zip(got, full[5:], strict=True))
    assert len(got) == len(full) - 5
    again = [np.asarray(b["i"]) for b in tail]  # the next pass: the resume point is used once
    assert all(np.array_equal(a, b) for a, b in zip(again, full, strict=True))
    resumed.load_state_dict({"epoch": 0, "batches": 5})  # a new resume point counts again
    assert len([b for b in tail]) == len(full) - 5


def test_shuffle_quality_of_the_keyed_order():
    """Documented measure: rank correlation of position and row ≈ 0, adjacent positions
    land as far apart as uniform draws, every decile equally represented in a batch."""
    from datakiln.dataset._permute import permute

    n = 1_000_000
    rows = permute(np.arange(n, dtype=np.uint64), n, 2024).astype(np.int64)
    assert abs(np.corrcoef(np.arange(n), rows)[0, 1]) < 0.01
    close = (np.abs(np.diff(rows)) < n / 1000).mean()
    assert abs(close - 0.002) < 0.0005
    counts = np.bincount(rows[:4096] * 10 // n, minlength=10)
    chi2 = ((counts - 409.6) ** 2 / 409.6).sum()
    assert chi2 < 27.9  # 99.9 % quantile of chi-square with 9 degrees of freedom


def test_async_for(numbered):
    import asyncio

    async def collect():
        return [batch["i"].copy() async for batch in numbered.loader(4096, seed=9)]

    batches = asyncio.run(collect())
    expected = _epoch(numbered.loader(4096, seed=9))
    assert all(np.array_equal(a, b) for a, b in zip(batches, expected, strict=True))


MEMORY_CHILD = """
import json, sys
import pandas  # libraries the loader may import on first use are not data: load them first
import datakiln
def anonymous():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon"))
cached = datakiln.read(sys.argv[1], format="arrow")
before = anonymous()  # before the loader: its category codes count against the budget too
loader = cached.loader(4096, seed=0, memory_budget=sys.argv[2])
peak, rows = anonymous(), 0
for batch in loader:
    rows += len(batch["f0"])
    peak = max(peak, anonymous())
print(json.dumps({"rows": rows, "growth": peak - before}))
"""


def test_epoch_over_data_three_times_the_budget_keeps_anonymous_memory_bounded(tmp_path):
    import json
    import subprocess
    import sys

    rows = 2_500_000
    table = pa.table({f"f{i}": np.random.default_rng(i).normal(size=rows) for i in range(10)}
                     | {"c": pa.array(np.array(["a", "b", "c"])[np.arange(rows) % 3])})
    datakiln.from_arrow(table).cache(tmp_path / "big.arrow")  # ~210 MB on disk: 3x the budget
    del table
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(tmp_path / "big.arrow"), "70MB"],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["rows"] == rows
    # file pages are memory-mapped (shared, reclaimable); what the loader itself holds is
    # the category codes (4 bytes a row) and a few batches in flight. Measured growth varies
    # between 62 and 74 MB from run to run with the same code (malloc arenas of the loader's
    # threads), so the bound is the budget plus 25%: still far below the 210 MB of data
    assert result["growth"] < 87_500_000, result


def test_torch_map_style_dataset_with_getitems(numbered):
    import torch

    rows = numbered.loader(64).torch_map_dataset()
    assert len(rows) == 10_007
    batch = rows.__getitems__([5, 3, 10_006])
    assert batch["i"].tolist() == [5, 3, 10_006] and isinstance(batch["f"], torch.Tensor)
    assert rows[7]["i"].item() == 7
    loader = torch.utils.data.DataLoader(rows, batch_size=1000, shuffle=True,
                                         collate_fn=lambda batch: batch)
    seen = torch.cat([b["i"] for b in loader]).sort().values
    assert seen.tolist() == list(range(10_007))


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    import pyarrow.parquet as pq

    from datakiln.errors import ParseError

    for i in range(3):
        pq.write_table(pa.table({"x": np.arange(i * 100, i * 100 + 100)}), tmp_path / f"p{i}.parquet")
    ds = datakiln.read(str(tmp_path / "p*.parquet"))
    (tmp_path / "p1.parquet").write_bytes(b"PAR1" + b"\0" * 100 + b"PAR1")  # corrupt after opening
    with pytest.raises(ParseError, match="p1.parquet"):
        list(ds.loader(50))
    loader = ds.loader(50, on_error="skip")
    seen = np.concatenate([b["x"] for b in loader])
    assert sorted(seen.tolist()) == list(range(100)) + list(range(200, 300))
    assert ds.stats["bad_rows"] == 1 and "p1.parquet" in ds.stats["examples"][0]["text"]


def test_column_choice_does_not_change_the_order(numbered):
    features = numbered.loader(300, seed=4, columns=["i", "f"])
    labels = numbered.loader(300, seed=4, columns=["c"])
    code_of = np.array([2, 1, -1, 0])  # red, green, missing, blue (categories are sorted)
    for a, b in zip(features, labels, strict=True):
        expected = np.where(a["i"] >= 10_004, 2, code_of[a["i"] % 4])
        assert np.array_equal(b["c"], expected)  # the same rows, in the same order



@pytest.fixture
def streamed(tmp_path):
    """200,000 rows in 400 row groups of 500: read at random only through a cache."""
    import pyarrow.parquet as pq

    table = pa.table({"i": np.arange(200_000), "c": pa.array(np.array(["x", "y"])[np.arange(200_000) % 2])})
    pq.write_table(table, tmp_path / "s.parquet", row_group_size=500)
    return datakiln.read(tmp_path / "s.parquet")


def test_streaming_mode_for_data_larger_than_the_budget(streamed):
    loader = streamed.loader(1000, seed=1, memory_budget="1MB")
    assert loader.streaming
    first = _epoch(loader)
    assert sorted(np.concatenate(first).tolist()) == list(range(200_000))  # exactly once
    again = _epoch(streamed.loader(1000, seed=1, memory_budget="1MB", num_threads=1))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    loader.set_epoch(1)
    assert not np.array_equal(np.concatenate(_epoch(loader)), np.concatenate(first))
    codes = next(iter(streamed.loader(10, seed=1, memory_budget="1MB")))
    assert set(codes["c"].tolist()) <= {0, 1} and codes["c"].tolist() == (codes["i"] % 2).tolist()


def test_streaming_ranks_resume_and_quality(streamed):
    per_rank = [_epoch(streamed.loader(700, seed=2, memory_budget="1MB", rank=r, world_size=3,
                                       even_batches="spread")) for r in range(3)]
    assert len({len(b) for b in per_rank}) == 1
    seen = np.concatenate([np.concatenate(b) for b in per_rank])
    assert sorted(seen.tolist()) == list(range(200_000))
    padded = [_epoch(streamed.loader(700, seed=2, memory_budget="1MB", rank=r, world_size=3))
              for r in range(3)]  # the default for 3 ranks: equal full batches
    assert [len(b) for b in padded] == [96] * 3 and {b.size for r in padded for b in r} == {700}
    seen = np.concatenate([np.concatenate(b) for b in padded])
    assert len(seen) == 96 * 2100 and set(seen.tolist()) == set(range(200_000))
    first_step = np.concatenate([padded[r][0] for r in range(3)])  # epoch positions 0..2099
    assert np.array_equal(np.concatenate([padded[r][-1] for r in range(3)])[-1600:],
                          first_step[:1600])  # the padding repeats the epoch's first rows
    full = _epoch(streamed.loader(700, seed=2, memory_budget="1MB"))
    resumed = streamed.loader(700, seed=2, memory_budget="1MB")
    resumed.load_state_dict({"epoch": 0, "batches": 9})
    assert all(np.array_equal(a, b) for a, b in zip(_epoch(resumed), full[9:], strict=True))
    # quality: each batch mixes many of the 400 source blocks; no trace of the file order
    # (measured over 8 seeds: 98.5-99.1 blocks per batch, |rank correlation| <= 0.09)
    blocks = [len(np.unique(batch // 500)) for batch in full[:-1]]
    assert np.mean(blocks) >= 50
    order = np.concatenate(full)
    assert abs(np.corrcoef(np.arange(len(order)), order)[0, 1]) < 0.2


def test_pin_memory_needs_torch_format_and_a_gpu(numbered):
    import torch

    with pytest.raises(InvalidArgumentError, match="format='torch'"):
        numbered.loader(8, pin_memory=True)
    if torch.cuda.is_available():  # a GPU machine: batches come back page-locked
        batch = next(iter(numbered.loader(8, format="torch", pin_memory=True)))
        assert batch["i"].is_pinned()
    else:
        with pytest.raises(InvalidArgumentError, match="needs a CUDA device"):
            numbered.loader(8, format="torch", pin_memory=True)


RANK_CHILD = """
import json, sys
import numpy as np, pyarrow as pa
import datakiln
ranks, world = [int(r) for r in sys.argv[1].split(",")], int(sys.argv[2])
padding = np.zeros(int(sys.argv[3]), dtype=np.uint8)  # shifts where this process allocates
ds = datakiln.from_arrow(pa.table({"i": np.arange(803), "x": np.arange(803) * 0.5}))
results = []
for rank in ranks:
    out = {"fingerprint": ds.fingerprint}
    for mode, options in {"spread": {"even_batches": "spread"}, "pad": {},
                          "drop_last": {"drop_last": True}}.items():
        loader = ds.loader(100, seed=7, rank=rank, world_size=world, **options)
        out[mode] = [batch["i"].tolist() for batch in loader]
    results.append(out)
print(json.dumps(results))
"""


def _ranks_in_processes(groups):
    """Run RANK_CHILD once per group of ranks (8 ranks in all), each in its own process."""
    import json
    import subprocess
    import sys

    children = [subprocess.Popen([sys.executable, "-c", RANK_CHILD, ",".join(map(str, ranks)), "8",
                                  str(1000 * i + 1)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i, ranks in enumerate(groups)]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.extend(json.loads(out))
    return results


def test_ranks_in_separate_processes_agree_on_the_order():
    """8 ranks in 2 processes over from_arrow of the same 803-row table: every row exactly once
    (the in-memory fingerprint held id(table): 516 distinct rows were covered)."""
    _check_ranks(_ranks_in_processes([[0, 1, 2, 3], [4, 5, 6, 7]]))


@pytest.mark.slow
def test_eight_ranks_in_eight_processes_agree_on_the_order():
    _check_ranks(_ranks_in_processes([[r] for r in range(8)]))


def _check_ranks(results):
    assert len({r["fingerprint"] for r in results}) == 1
    assert results[0]["fingerprint"] == datakiln.from_arrow(
        pa.table({"i": np.arange(803), "x": np.arange(803) * 0.5})).fingerprint  # and this one
    dropped = [row for r in results for batch in r["drop_last"] for row in batch]
    assert len(dropped) == 800 and len(set(dropped)) == 800  # no overlap between processes
    spread = sorted(row for r in results for batch in r["spread"] for row in batch)
    assert spread == list(range(803))
    padded = [row for r in results for batch in r["pad"] for row in batch]
    assert len(padded) == 1600 and set(padded) == set(range(803))
    assert all(len(batch) == 100 for r in results for batch in r["pad"])


def test_resume_in_a_new_process_continues_the_same_order(tmp_path):
    """Over in-memory data and over a re-copied cache on another path."""
    import json
    import shutil
    import subprocess
    import sys

    child = """
import json, sys
import numpy as np, pyarrow as pa
import datakiln
ds = datakiln.from_arrow(pa.table({"i": np.arange(5000)}))
loader = ds.loader(64, seed=3)
loader.load_state_dict({"epoch": 1, "batches": 10})
cached = datakiln.read(sys.argv[1], format="arrow").loader(64, seed=3)
print(json.dumps({"memory": next(iter(loader))["i"].tolist(),
                  "cache": next(iter(cached))["i"].tolist()}))
"""
    datakiln.from_arrow(pa.table({"i": np.arange(5000)})).cache(tmp_path / "a" / "c.arrow")
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "c.arrow", tmp_path / "b" / "copy.arrow")  # new path, new mtime
    out = subprocess.run([sys.executable, "-c", child, str(tmp_path / "b" / "copy.arrow")],
                         capture_output=True, text=True, check=True)
    theirs = json.loads(out.stdout)
    ours = datakiln.from_arrow(pa.table({"i": np.arange(5000)})).loader(64, seed=3)
    ours.set_epoch(1)
    assert theirs["memory"] == _epoch(ours)[10].tolist()
    original = datakiln.read(tmp_path / "a" / "c.arrow", format="arrow").loader(64, seed=3)
    assert theirs["cache"] == next(iter(original))["i"].tolist()


def test_key_stands_for_the_content_in_the_order():
    a = datakiln.from_arrow(pa.table({"i": np.arange(1000)}))
    b = datakiln.from_arrow(pa.table({"i": np.arange(1000), "extra": np.zeros(1000)}))
    assert a.fingerprint != b.fingerprint
    first = next(iter(a.loader(50, seed=1, key="v1")))["i"]
    assert np.array_equal(first, next(iter(b.loader(50, seed=1, key="v1")))["i"])
    assert not np.array_equal(first, next(iter(a.loader(50, seed=1)))["i"])
    with pytest.raises(InvalidArgumentError, match="even_batches"):
        a.loader(50, even_batches="repeat")
    with pytest.raises(InvalidArgumentError, match="key"):
        a.loader(50, key="")


def test_torch_loader_tracks_state_where_the_batches_are_taken(numbered):
    """With DataLoader workers the state stayed at 0 batches and a resume skipped on every
    later pass; torch_loader counts in this process and consumes a skip once."""
    full = [b["i"].copy() for b in numbered.loader(500, seed=2)]
    loader = numbered.loader(500, seed=2)
    batches = loader.torch_loader(num_workers=2)
    head = []
    for batch in batches:
        head.append(batch["i"].numpy().copy())
        if len(head) == 3:
            break
    assert loader.state_dict() == {"epoch": 0, "batches": 3, "samples": 1500}
    assert batches.state_dict() == loader.state_dict()
    resumed = numbered.loader(500, seed=2)
    resumed.load_state_dict(loader.state_dict())
    tail = [b["i"].numpy() for b in resumed.torch_loader(num_workers=2)]
    assert all(np.array_equal(a, b) for a, b in zip(head + tail, full, strict=True))
    assert resumed.state_dict()["batches"] == 0  # the pass completed: the skip was used once
    again = [b["i"].numpy() for b in resumed.torch_loader(num_workers=2)]
    assert len(again) == len(full) and np.array_equal(again[0], full[0])
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        loader.torch_loader(batch_size=10)
    with pytest.raises(InvalidArgumentError, match="persistent_workers"):
        loader.torch_loader(num_workers=2, persistent_workers=True)


def test_memory_budget_compares_decoded_not_compressed_bytes(tmp_path):
    """A tiny zstd Parquet file that decodes to many MB streams under a small budget."""
    import pyarrow.parquet as pq

    table = pa.table({"zero": np.zeros(1_000_000, dtype=np.int64),
                      "step": np.repeat(np.arange(1000), 1000)})
    pq.write_table(table, tmp_path / "z.parquet", compression="zstd", row_group_size=100_000)
    assert (tmp_path / "z.parquet").stat().st_size < 100_000 and table.nbytes == 16_000_000
    ds = datakiln.read(tmp_path / "z.parquet")
    loader = ds.loader(1000, memory_budget="4MB")
    assert loader.streaming  # 16 MB decoded: not loaded whole under a 4 MB budget
    assert not ds.loader(1000, memory_budget="64MB").streaming
    from datakiln.dataset._size import decoded_bytes

    assert 0.9 * table.nbytes <= decoded_bytes(ds, 10_000) <= 1.5 * table.nbytes


def test_sql_source_larger_than_the_budget_is_streamed(sqlite_url):
    import sqlalchemy as sa

    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (i INTEGER, s TEXT)"))
        conn.execute(sa.text("INSERT INTO t VALUES (:i, :s)"),
                     [{"i": i, "s": f"row number {i:06d} of the table"} for i in range(40_000)])
    engine.dispose()
    ds = datakiln.read_sql(sqlite_url, table="t")
    loader = ds.loader(500, seed=0, memory_budget="1MB")
    assert loader.streaming  # ~1.9 MB decoded: the SQL source is no longer loaded whole
    seen = np.concatenate(_epoch(loader))
    assert sorted(seen.tolist()) == list(range(40_000))
    assert not ds.loader(500, memory_budget="64MB").streaming


def test_the_dataset_layer_never_imports_integrations():
    """Layers look down: integrations/torch wraps the loader (it registers the torch format)."""
    import ast
    from pathlib import Path

    import datakiln.dataset

    for path in Path(datakiln.dataset.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("datakiln.integrations") for n in names), path.name
    import torch

    batch = next(iter(datakiln.from_arrow(pa.table({"i": np.arange(5)})).loader(5, format="torch")))
    assert isinstance(batch["i"], torch.Tensor)  # the format still works, through the hook
