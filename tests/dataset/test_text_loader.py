"""The loader's text batches: tokeniser hook, padding, length bucketing, augmentation."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import datakiln
from datakiln.augment import Compose, RandomSwap, SynonymReplace
from datakiln.augment.text import EDA, TextBatch
from datakiln.dataset._text_batches import BUCKET_BATCHES, pad
from datakiln.errors import InvalidArgumentError, SchemaError

N = 1_000


def _texts(n: int = N) -> list[str]:
    rng = np.random.default_rng(0)
    words = ["happy", "movie", "house", "quick", "the", "dog", "and", "music", "car", "film"]
    return [f"{i} " + " ".join(rng.choice(words, size=int(rng.integers(1, 60)))) for i in range(n)]


def tokenize(text: str) -> list[int]:
    """The row number first (to find rows again), then one id per word."""
    return [int(w) if w.isdigit() else 10_000 + sum(map(ord, w)) for w in text.split()]


@pytest.fixture()
def ds() -> datakiln.Dataset:
    labels = np.array(["ham", "spam"])[np.arange(N) % 2]
    table = pa.table({"text": _texts(), "label": labels, "x": np.arange(N, dtype=np.float64)})
    return datakiln.from_arrow(table)


def _rows(batch: dict[str, np.ndarray]) -> np.ndarray:
    return batch["input_ids"][:, 0]


def test_tokens_padding_and_other_columns(ds) -> None:
    loader = ds.loader(64, text_column="text", tokenizer=tokenize, shuffle=False)
    texts = _texts()
    for number, batch in enumerate(loader):
        assert set(batch) == {"input_ids", "attention_mask", "label", "x"}
        assert batch["input_ids"].dtype == np.int64 and batch["attention_mask"].dtype == np.int64
        rows = loader.indices(number)
        lengths = [len(texts[r].split()) for r in rows]
        assert batch["input_ids"].shape == (rows.size, max(lengths))
        assert batch["attention_mask"].sum(axis=1).tolist() == lengths
        for i, row in enumerate(rows):
            assert batch["input_ids"][i, :lengths[i]].tolist() == tokenize(texts[row])
            assert not batch["input_ids"][i, lengths[i]:].any()
        assert batch["x"].tolist() == rows.astype(float).tolist()
        assert batch["label"].tolist() == (rows % 2).tolist()  # categories as codes (ham 0, spam 1)
    fixed = next(iter(ds.loader(64, text_column="text", tokenizer=tokenize, pad_to=8, shuffle=False)))
    assert fixed["input_ids"].shape == (64, 8)
    assert fixed["input_ids"][0].tolist() == tokenize(texts[0])[:8]


def test_pad_helper() -> None:
    ids, mask = pad([np.array([5, 6, 7]), np.array([], dtype=np.int64)], "longest")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 0]] and mask.tolist() == [[1, 1, 1], [0, 0, 0]]
    assert pad([np.array([], dtype=np.int64)], "longest")[0].shape == (1, 1)


def _epoch(loader) -> list[np.ndarray]:
    return [_rows(b) for b in loader]


def test_bucketing_keeps_every_row_once_and_cuts_padding(ds) -> None:
    plain = ds.loader(16, text_column="text", tokenizer=tokenize, seed=3)
    bucketed = ds.loader(16, text_column="text", tokenizer=tokenize, seed=3, bucket_by_length=True)
    for epoch in range(2):
        plain.set_epoch(epoch)
        bucketed.set_epoch(epoch)
        rows = np.concatenate(_epoch(bucketed))
        assert np.sort(rows).tolist() == list(range(N))
    chars = ds.loader(16, text_column="text", tokenizer=tokenize, seed=3, bucket_by_length="chars")
    assert np.sort(np.concatenate(_epoch(chars))).tolist() == list(range(N))
    waste = [1 - np.mean([b["attention_mask"].mean() for b in loader]) for loader in (plain, bucketed, chars)]
    assert waste[1] < waste[0] / 4 and waste[1] < waste[2] < waste[0] / 2, waste
    # a block's rows are the same rows as without bucketing, only regrouped
    bucketed.set_epoch(0)
    plain.set_epoch(0)
    first_block = np.concatenate(_epoch(bucketed)[:BUCKET_BATCHES])
    assert np.sort(first_block).tolist() == np.sort(np.concatenate(_epoch(plain)[:BUCKET_BATCHES])).tolist()


def test_bucketed_order_is_a_pure_function_of_seed_and_epoch_and_resumes(ds) -> None:
    def make(seed: int = 1):
        return ds.loader(16, text_column="text", tokenizer=tokenize, seed=seed, bucket_by_length=True,
                         num_threads=3)

    a, b = make(), make()
    first = _epoch(a)
    assert all(np.array_equal(x, y) for x, y in zip(first, _epoch(b)))
    a.set_epoch(1)
    assert not all(np.array_equal(x, y) for x, y in zip(first, _epoch(a)))
    assert not all(np.array_equal(x, y) for x, y in zip(first, _epoch(make(seed=2))))
    # stop after 37 batches (inside a block), resume in a fresh loader
    stopped = make()
    iterator = iter(stopped)
    for _ in range(37):
        next(iterator)
    state = stopped.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    rest = _epoch(resumed)
    assert len(rest) == len(first) - 37
    assert all(np.array_equal(x, y) for x, y in zip(rest, first[37:]))


def test_bucketed_ranks_never_overlap(ds) -> None:
    def rows(rank: int, bucket: bool) -> np.ndarray:
        loader = ds.loader(16, text_column="text", tokenizer=tokenize, seed=0, rank=rank, world_size=2,
                           bucket_by_length=bucket)
        return np.concatenate(_epoch(loader))

    bucketed = [rows(r, True) for r in range(2)]
    for rank in range(2):  # each rank's rows regrouped within the rank, never moved to the other
        assert np.sort(bucketed[rank]).tolist() == np.sort(rows(rank, False)).tolist()
    # 1,000 rows in steps of 32: the final step is padded with 24 repeats of the epoch's first rows
    assert bucketed[0].size == bucketed[1].size == 512
    assert set(bucketed[0].tolist()) | set(bucketed[1].tolist()) == set(range(N))
    assert len(set(bucketed[0].tolist()) & set(bucketed[1].tolist())) <= 24


def test_augmentation_on_the_loader_is_keyed_by_row_id(ds) -> None:
    texts = _texts()
    transform = Compose([SynonymReplace(0.2), RandomSwap(0.1)])
    seen: dict[int, list[int]] = {}
    for batch_size in (16, 100):
        loader = ds.loader(batch_size, text_column="text", tokenizer=tokenize, seed=4, transform=transform)
        loader.set_epoch(2)
        for batch in loader:
            rows = loader.last_params["row_ids"]
            for i, row in enumerate(rows):
                tokens = batch["input_ids"][i, :batch["attention_mask"][i].sum()].tolist()
                assert seen.setdefault(int(row), tokens) == tokens  # same in either batch size
    sample = np.array([3, 500, 999])
    expected = transform(TextBatch([texts[r] for r in sample], sample), seed=4, epoch=2).texts
    # the row number may be swapped away from the front; compare the token multisets and order
    for row, text in zip(sample, expected):
        assert seen[int(row)] == tokenize(text)
    assert sum(seen[r] != tokenize(texts[r]) for r in range(N)) > 0.9 * N
    # replay the last batch from its record
    record = loader.last_params
    replayed = transform.apply(TextBatch([texts[r] for r in record["row_ids"]], record["row_ids"]),
                               record["params"])
    assert [tokenize(t) for t in replayed.texts][0] == seen[int(record["row_ids"][0])]


def test_torch_format(ds) -> None:
    torch = pytest.importorskip("torch")
    batch = next(iter(ds.loader(8, text_column="text", tokenizer=tokenize, format="torch")))
    assert batch["input_ids"].dtype == torch.int64
    assert batch["attention_mask"].shape == batch["input_ids"].shape


def test_text_loader_errors(ds) -> None:
    with pytest.raises(InvalidArgumentError, match="tokenizer="):
        ds.loader(8, text_column="text")
    with pytest.raises(SchemaError, match="not text"):
        ds.loader(8, text_column="x", tokenizer=tokenize)
    with pytest.raises(SchemaError, match="no text column 'body'"):
        ds.loader(8, text_column="body", tokenizer=tokenize)
    with pytest.raises(InvalidArgumentError, match="pad_to"):
        ds.loader(8, text_column="text", tokenizer=tokenize, pad_to=0)
    with pytest.raises(InvalidArgumentError, match="format"):
        ds.loader(8, text_column="text", tokenizer=tokenize, format="arrow")
    with pytest.raises(InvalidArgumentError, match="text_column"):
        ds.loader(8, tokenizer=tokenize)
    with pytest.raises(InvalidArgumentError, match="bucket_by_length"):
        ds.loader(8, text_column="text", tokenizer=tokenize, bucket_by_length="words")
    with pytest.raises(InvalidArgumentError, match="EDA makes several copies"):
        next(iter(ds.loader(8, text_column="text", tokenizer=tokenize, transform=EDA(n_aug=2))))
    with pytest.raises(InvalidArgumentError, match="row"):
        next(iter(ds.loader(8, text_column="text", tokenizer=lambda t: "not ids", shuffle=False)))
