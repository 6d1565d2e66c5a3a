"""The n-gram copy check of free-text columns: the share of the synthetic texts' word
8-grams that occur in the training texts, against the holdout's own share.

A generator that never emits a training message whole can still stitch long runs of one
together; 8 consecutive words shared with the training data are rare between unrelated
messages, so a synthetic share well above the holdout's (real, unseen messages) means
memorised passages.

Tokens are :func:`datakiln.synth._ngram.tokenize`'s words and punctuation marks, lower
case; each 8-gram becomes a 64-bit hash (per-token BLAKE2b hashes combined by a
polynomial in wrapping uint64 arithmetic, vectorised over a batch). Memory: 8 bytes per
distinct training 8-gram; past ``max_grams`` (default 20M, 160 MB) only hashes whose low
``k`` bits are zero are kept (``k`` grows as needed) and the same filter is applied to the
synthetic and holdout 8-grams: a hash-based sample, so the shares stay unbiased.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from datakiln.dataset.dataset import Dataset
from datakiln.synth._ngram import tokenize

__all__ = ["GRAM", "ngram_overlap"]

GRAM = 8
_MULT = np.uint64(0x9E3779B97F4A7C15)


def _token_hash(token: str, cache: dict[str, int]) -> int:
    found = cache.get(token)
    if found is None:
        digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        found = int.from_bytes(digest, "little")
        cache[token] = found
    return found


def gram_hashes(texts: list[Any], cache: dict[str, int]) -> np.ndarray:
    """64-bit hashes of every word 8-gram of ``texts`` (nulls and shorter texts give none)."""
    ids: list[int] = []
    text_of: list[int] = []
    for i, text in enumerate(texts):
        if text is None:
            continue
        tokens = tokenize(text.lower())
        ids.extend(_token_hash(t, cache) for t in tokens)
        text_of.extend([i] * len(tokens))
    if len(ids) < GRAM:
        return np.zeros(0, dtype=np.uint64)
    h, owner = np.array(ids, dtype=np.uint64), np.array(text_of, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(h, GRAM)
    same = np.lib.stride_tricks.sliding_window_view(owner, GRAM)
    keep = same[:, 0] == same[:, -1]  # windows inside one text
    combined = np.zeros(int(keep.sum()), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(GRAM):
            combined = combined * _MULT + windows[keep, j]
    return combined


def _kept(hashes: np.ndarray, bits: int) -> np.ndarray:
    return hashes[(hashes & np.uint64((1 << bits) - 1)) == 0] if bits else hashes


def ngram_overlap(real: Dataset, synthetic: Dataset, name: str, memory_budget: int | None,
                  holdout: Dataset | None = None, max_grams: int = 20_000_000) -> dict[str, Any]:
    """The 8-gram copy check of one text column.

    Returns ``{"ngram8_share", "ngram8_grams", "ngram8_holdout_share", "ngram8_sampled_bits"}``:
    the share of the synthetic 8-grams found among the training 8-grams (None without any),
    how many were checked, the holdout's share (None without a holdout) and ``k``.
    """
    cache: dict[str, int] = {}
    parts, held_grams, bits = [np.zeros(0, dtype=np.uint64)], 0, 0
    for table in real.select([name])._tables(lambda t: t, memory_budget=memory_budget):
        part = np.unique(_kept(gram_hashes(table[name].to_pylist(), cache), bits))
        parts.append(part)
        held_grams += part.size
        if held_grams > 2 * max_grams:  # merge the batches' hashes; thin them while too many
            parts = [np.unique(np.concatenate(parts))]
            while parts[0].size > max_grams:
                bits += 1
                parts = [_kept(parts[0], bits)]
            held_grams = parts[0].size
    train = np.unique(np.concatenate(parts))
    while train.size > max_grams:
        bits += 1
        train = _kept(train, bits)

    def share(dataset: Dataset) -> tuple[float | None, int]:
        hits = total = 0
        for table in dataset.select([name])._tables(lambda t: t, memory_budget=memory_budget):
            grams = _kept(gram_hashes(table[name].to_pylist(), cache), bits)
            hits, total = hits + int(np.isin(grams, train).sum()), total + grams.size
        return (hits / total if total else None), total

    found, grams = share(synthetic)
    held = share(holdout)[0] if holdout is not None and name in holdout.columns else None
    return {"ngram8_share": found, "ngram8_grams": grams, "ngram8_holdout_share": held,
            "ngram8_sampled_bits": bits}

