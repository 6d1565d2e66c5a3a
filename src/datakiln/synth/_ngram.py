"""A small word-level n-gram model for synthetic free-text columns (``text="ngram"``).

Fitting streams: :meth:`NgramText.update` takes one batch of texts (and, where the model
is conditioned, the batch's class values) and adds its n-gram counts; :meth:`finish` then
prunes the vocabulary and packs the counts into arrays. Memory grows with the number of
distinct n-grams and distinct texts, never with a Python object per row kept around.

- **Tokens**: words (``\\w+`` with inner apostrophes) and single punctuation marks, case kept.
- **Vocabulary pruning**: tokens seen fewer than ``min_count`` times in the whole column
  (names, phone numbers, codes) become one placeholder, :data:`RARE`, before any n-gram is
  counted, so a rare token of the training data is never emitted.
- **Conditioning**: one model per class of the condition column with at least
  ``min_class_texts`` texts; rarer classes, nulls and unseen classes use the pooled model
  fitted on every text.
- **Length**: each model keeps the histogram of its texts' token counts; a sampled text
  first draws its length from it, then that many tokens.
- **Backoff**: "stupid backoff" used for generation: the next token is drawn from the
  counts of the longest context (up to ``n - 1`` tokens) seen in training, except that with
  probability ``backoff`` (0.4, the factor of Brants et al. 2007) a seen context is passed over
  for the next shorter one; the unigram counts end the chain. No smoothing mass is
  reserved for unseen n-grams: every emitted n-gram of order >= 2 was seen in training.
- **No verbatim copies**: every distinct training text leaves a 64-bit BLAKE2b hash of its
  normalised token sequence (8 bytes per distinct text, a sorted ``uint64`` array: 1M
  distinct texts cost 8 MB in memory and in the model file); a generated text whose hash is
  in that set is drawn again (new length, new tokens), up to 100 rounds.
- **Sampling is vectorised**: all texts of one model advance one token per step with NumPy
  (``searchsorted`` into sorted context keys, one cumulative-count lookup per row).

Why written here: the model is the product (streamed counts, pruning, conditioning, the
copy guard, data-only model files); no maintained library offers that combination.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.errors import DatakilnError

__all__ = ["RARE", "NgramText", "tokenize", "detokenize"]

RARE = "<rare>"
BOS, RARE_ID = 0, 1  # token ids 0 and 1; the vocabulary starts at 2
POOLED = "(pooled)"
BOS_WORD = "<s>"
_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = frozenset(".,!?;:)%'")
_ROUNDS = 100


def tokenize(text: str) -> list[str]:
    """Words and single punctuation marks of ``text`` (case kept)."""
    return _TOKEN.findall(text)


def detokenize(tokens: list[str]) -> str:
    """Tokens joined by spaces, without a space before closing punctuation."""
    out: list[str] = []
    for token in tokens:
        if out and token not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append(token)
    return "".join(out)


def text_hash(tokens: list[str]) -> int:
    """64-bit hash of a normalised token sequence (lower case, single spaces)."""
    key = " ".join(tokens).lower().encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


class NgramText:
    """Word n-gram model of one text column, optionally one per class of a condition column.

    Parameters
    ----------
    n : int
        Order (2..4; default 3: a token depends on the two before it).
    min_count : int
        Tokens seen fewer times in the column become :data:`RARE` (default 5).
    min_class_texts : int
        Classes with fewer texts use the pooled model (default 20).
    backoff : float
        Probability of passing over a seen context for a shorter one (default 0.4).
    """

    def __init__(self, n: int = 3, min_count: int = 5, min_class_texts: int = 20,
                 backoff: float = 0.4) -> None:
        self.n, self.min_count, self.min_class_texts, self.backoff = n, min_count, min_class_texts, backoff
        self._grams: dict[str, Counter[tuple[str, ...]]] = {}  # per class: (context..., token) counts
        self._lengths: dict[str, Counter[int]] = {}
        self._texts: dict[str, int] = {}
        self._unigrams: Counter[str] = Counter()
        self._hashes: list[np.ndarray] = []
        self._nulls = 0
        self._rows = 0

    # -- fitting -------------------------------------------------------------------------------
    def update(self, texts: list[str | None], classes: list[Any] | None = None) -> None:
        """Add one batch of texts (``classes``: the condition column's values, same length)."""
        hashes = []
        for i, text in enumerate(texts):
            self._rows += 1
            if text is None:
                self._nulls += 1
                continue
            tokens = tokenize(text)
            hashes.append(text_hash(tokens))
            self._unigrams.update(tokens)
            key = POOLED if classes is None or classes[i] is None else str(classes[i])
            grams = self._grams.setdefault(key, Counter())
            padded = [BOS_WORD] * (self.n - 1) + tokens
            grams.update(tuple(padded[j - self.n + 1:j + 1]) for j in range(self.n - 1, len(padded)))
            self._lengths.setdefault(key, Counter())[len(tokens)] += 1
            self._texts[key] = self._texts.get(key, 0) + 1
        self._hashes.append(np.unique(np.array(hashes, dtype=np.uint64)))

    def finish(self) -> NgramText:
        """Prune the vocabulary and pack the counts into arrays; returns ``self``."""
        if self._rows == 0 or self._rows == self._nulls:
            raise DatakilnError("text='ngram' needs at least one non-null text in the column")
        kept = sorted(t for t, c in self._unigrams.items() if c >= self.min_count)
        self.vocab_ = kept
        ids = {t: i + 2 for i, t in enumerate(kept)}
        ids[BOS_WORD] = BOS
        base = len(kept) + 2
        pooled: Counter[tuple[int, ...]] = Counter()
        pooled_lengths: Counter[int] = Counter()
        self.classes_, self.models_ = [], {}
        for key in sorted(self._grams):
            grams: Counter[tuple[int, ...]] = Counter()
            for gram, count in self._grams[key].items():
                grams[tuple(ids.get(t, RARE_ID) for t in gram)] += count
            pooled.update(grams)
            pooled_lengths.update(self._lengths[key])
            if key != POOLED and self._texts[key] >= self.min_class_texts:
                self.classes_.append(key)
                self.models_[key] = _pack(grams, self._lengths[key], self.n, base)
        self.models_[POOLED] = _pack(pooled, pooled_lengths, self.n, base)
        self.hashes_ = np.unique(np.concatenate(self._hashes)) if self._hashes else np.zeros(0, np.uint64)
        self.null_share_ = self._nulls / self._rows
        del self._grams, self._lengths, self._texts, self._unigrams, self._hashes
        return self

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, classes: list[Any] | None = None,
               dtype: pa.DataType = pa.string()) -> pa.Array:
        """``n`` texts (nulls at the learned share), class ``classes[i]`` for row ``i``."""
        words = np.array([BOS_WORD, RARE, *self.vocab_], dtype=object)
        keys = [POOLED] * n if classes is None else [
            str(c) if c is not None and str(c) in self.models_ else POOLED for c in classes]
        out: list[str | None] = [None] * n
        for key in set(keys):
            rows = np.array([i for i, k in enumerate(keys) if k == key], dtype=np.int64)
            for i, text in zip(rows, self._texts(self.models_[key], rows.size, rng, words)):
                out[i] = text
        null = rng.random(n) < self.null_share_
        return pa.array([None if z else t for t, z in zip(out, null)], type=dtype)

    def _texts(self, model: dict[str, Any], m: int, rng: np.random.Generator, words: np.ndarray) -> list[str]:
        texts: list[str] = [""] * m
        todo = np.arange(m)
        for _ in range(_ROUNDS):
            for i, tokens in zip(todo, self._generate(model, todo.size, rng)):
                texts[i] = detokenize(list(words[tokens]))
            hashes = np.array([text_hash(tokenize(texts[i])) for i in todo], dtype=np.uint64)
            place = np.searchsorted(self.hashes_, hashes).clip(max=max(self.hashes_.size - 1, 0))
            copied = self.hashes_[place] == hashes if self.hashes_.size else np.zeros(todo.size, bool)
            todo = todo[copied]
            if todo.size == 0:
                return texts
        raise DatakilnError(f"{todo.size} sampled texts kept equalling training texts after {_ROUNDS} draws; "
                            f"the text column is too small or repetitive for text='ngram' (use text='fake')")

    def _generate(self, model: dict[str, Any], m: int, rng: np.random.Generator) -> list[np.ndarray]:
        lengths = model["lengths"]
        size = rng.choice(lengths.size, size=m, p=lengths / lengths.sum())
        steps = int(size.max()) if m else 0
        out = np.zeros((m, steps), dtype=np.int64)
        history = np.full((m, self.n - 1), BOS, dtype=np.int64)
        for t in range(steps):
            active = np.flatnonzero(size > t)
            token = self._step(model, history[active], rng)
            out[active, t] = token
            history[active] = np.concatenate([history[active, 1:], token[:, None]], axis=1)
        return [out[i, :size[i]] for i in range(m)]

    def _step(self, model: dict[str, Any], history: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        m, base = history.shape[0], model["base"]
        token = np.full(m, -1, dtype=np.int64)
        for order in range(self.n, 0, -1):
            table = model["orders"][order - 1]
            open_ = np.flatnonzero(token < 0)
            if open_.size == 0:
                break
            key = _keys(history[open_, self.n - order:], base)
            where = np.searchsorted(table["ctx"], key).clip(max=table["ctx"].size - 1)
            seen = table["ctx"][where] == key
            if order > 1:
                seen &= rng.random(open_.size) >= self.backoff
            rows, ctx = open_[seen], where[seen]
            start, stop = table["start"][ctx], table["start"][ctx + 1]
            low = np.where(start > 0, table["cum"][start - 1], 0)
            draw = low + rng.random(rows.size) * (table["cum"][stop - 1] - low)
            token[rows] = table["tok"][np.searchsorted(table["cum"], draw, side="right").clip(max=stop - 1)]
        return token

    # -- model files ---------------------------------------------------------------------------
    def to_state(self, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON fields, arrays) of the fitted model; arrays are named ``<prefix>_...``."""
        state = {"n": self.n, "min_count": self.min_count, "min_class_texts": self.min_class_texts,
                 "backoff": self.backoff, "vocab": self.vocab_, "classes": self.classes_,
                 "null_share": self.null_share_}
        arrays = {f"{prefix}_hashes": self.hashes_}
        for j, key in enumerate([POOLED, *self.classes_]):
            model = self.models_[key]
            arrays[f"{prefix}_m{j}_lengths"] = model["lengths"]
            for order, table in enumerate(model["orders"], start=1):
                for field in ("ctx", "start", "tok", "count"):
                    arrays[f"{prefix}_m{j}_o{order}_{field}"] = table[field]
        return state, arrays

    @classmethod
    def from_state(cls, state: Any, arrays: dict[str, np.ndarray], prefix: str, column: str) -> NgramText:
        """The model back from :meth:`to_state`'s output, every field checked first."""
        from datakiln.synth._ngram_check import check_ngram_state

        check_ngram_state(state, arrays, prefix, column)
        model = cls(state["n"], state["min_count"], state["min_class_texts"], state["backoff"])
        model.vocab_, model.classes_ = list(state["vocab"]), list(state["classes"])
        model.null_share_ = float(state["null_share"])
        model.hashes_ = arrays[f"{prefix}_hashes"]
        base = len(model.vocab_) + 2
        model.models_ = {}
        for j, key in enumerate([POOLED, *model.classes_]):
            orders = []
            for order in range(1, model.n + 1):
                table = {f: arrays[f"{prefix}_m{j}_o{order}_{f}"] for f in ("ctx", "start", "tok", "count")}
                table["cum"] = np.cumsum(table["count"], dtype=np.float64)
                orders.append(table)
            model.models_[key] = {"orders": orders, "lengths": arrays[f"{prefix}_m{j}_lengths"], "base": base}
        del model._grams, model._lengths, model._texts, model._unigrams, model._hashes
        return model



def _keys(context: np.ndarray, base: int) -> np.ndarray:
    """One int64 key per row of token ids (little-endian digits in ``base``); 0 for no context."""
    key = np.zeros(context.shape[0], dtype=np.int64)
    for j in range(context.shape[1]):
        key = key * base + context[:, j]
    return key


def _pack(grams: Counter[tuple[int, ...]], lengths: Counter[int], n: int, base: int) -> dict[str, Any]:
    """Sorted context keys, per-context successor tokens and counts for orders 1..n (from the
    n-gram counts ``grams``, each lower order summed from them), and the token-count histogram."""
    histogram = np.zeros(max(lengths) + 1, dtype=np.int64)
    for size, count in lengths.items():
        histogram[size] = count
    orders = []
    for order in range(1, n + 1):
        counts: Counter[tuple[int, int]] = Counter()
        for gram, count in grams.items():
            key = 0
            for t in gram[n - order:n - 1]:
                key = key * base + t
            counts[(key, gram[-1])] += count
        pairs = np.array(sorted(counts), dtype=np.int64).reshape(-1, 2)
        count = np.array([counts[(int(k), int(t))] for k, t in pairs], dtype=np.int64)
        ctx, first = np.unique(pairs[:, 0], return_index=True)
        start = np.append(first, pairs.shape[0]).astype(np.int64)
        table = {"ctx": ctx, "start": start, "tok": pairs[:, 1].copy(), "count": count}
        table["cum"] = np.cumsum(count, dtype=np.float64)
        orders.append(table)
    return {"orders": orders, "lengths": histogram, "base": base}
