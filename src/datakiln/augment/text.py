"""Text augmentation (EDA, Wei & Zou 2019) on the augmentation contract.

Ops: :class:`SynonymReplace`, :class:`RandomInsert`, :class:`RandomSwap`,
:class:`RandomDelete`, and :class:`EDA`, which makes ``n_aug`` augmented copies of each
message as the paper does. With a rate ``alpha`` and a text of ``L`` words, the first three
change ``n = max(1, round(alpha * L))`` words (0 when ``alpha == 0``); deletion drops each
word with probability ``p`` (never every word: one is kept, and a one-word text is left
alone). Stop words (:data:`~datakiln.augment._tokenize.STOP_WORDS`) and one-character words
are never replaced and never the source of an inserted synonym; swap and delete act on
any word, as in EDA.

Every random choice (which positions, which synonym) comes from one generator per row
keyed by ``(seed, epoch, row id, op stream)`` (:meth:`SampleRandom.generators`), so a
row is augmented the same in any batch, batch size, thread or rank. ``make_params``
records the edits per row (positions and words), ``apply`` performs them: recorded
parameters replay exactly. Texts are split into words and the gaps around them
(:mod:`datakiln.augment._tokenize`), so punctuation and spacing survive; ``None`` stays
``None``.

Synonyms come from WordNet 3.0 shipped with datakiln (:mod:`datakiln.augment._wordnet`),
or from a ``lexicon`` of your own (a dict word → synonyms, e.g. for Chinese with
``tokenizer="jieba"``).

>>> from datakiln.augment.text import SynonymReplace, TextBatch
>>> batch = TextBatch(["I am so happy today"], row_ids=[0])
>>> SynonymReplace(0.2)(batch, seed=1).texts     # doctest: +SKIP
['I am so glad today']
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from datakiln.augment._random import SampleRandom
from datakiln.augment._tokenize import STOP_WORDS, Tokenizer, make_tokenizer
from datakiln.augment._wordnet import Lexicon, wordnet
from datakiln.augment.base import Augmenter, Params
from datakiln.dataset._text_batches import register_text_batch
from datakiln.errors import InvalidArgumentError

__all__ = ["EDA", "RandomDelete", "RandomInsert", "RandomSwap", "SynonymReplace", "TextBatch",
           "augment_copies"]


@dataclass
class TextBatch:
    """A batch of texts with their row ids (what the draws are keyed by) and labels.

    Attributes
    ----------
    texts : list of str or None
    row_ids : ndarray of int64
        Each text's row id in the dataset.
    labels : ndarray, optional
    copies : ndarray of int64, optional
        Which augmented copy each row is (set by :func:`augment_copies` and :class:`EDA`).
    """

    texts: list[str | None]
    row_ids: np.ndarray
    labels: np.ndarray | None = None
    copies: np.ndarray | None = None
    partners: Any = field(default=None, repr=False)  # the contract's mixing slot (unused)

    def __post_init__(self) -> None:
        self.texts = list(self.texts)
        self.row_ids = np.asarray(self.row_ids, dtype=np.int64).reshape(-1)
        if len(self.texts) != self.row_ids.size:
            raise InvalidArgumentError(f"a text batch needs one row id per text: {len(self.texts)} "
                                       f"texts, {self.row_ids.size} ids")
        if self.labels is not None:
            self.labels = np.asarray(self.labels)

    def __len__(self) -> int:
        return int(self.row_ids.size)

    def with_texts(self, texts: list[str | None]) -> TextBatch:
        """A copy with new texts (same rows)."""
        return replace(self, texts=list(texts))

    def subset(self, index: np.ndarray) -> TextBatch:
        """The rows at ``index``."""
        index = np.asarray(index, dtype=np.int64)
        return TextBatch([self.texts[i] for i in index], self.row_ids[index],
                         None if self.labels is None else self.labels[index],
                         None if self.copies is None else self.copies[index])

    def merge(self, parts: Sequence[tuple[np.ndarray, TextBatch]]) -> TextBatch:
        """Put subsets (``(index, sub-batch)`` pairs covering every row once) back in order."""
        texts: list[str | None] = list(self.texts)
        for index, part in parts:
            for j, i in enumerate(index):
                texts[int(i)] = part.texts[j]
        return self.with_texts(texts)


register_text_batch(TextBatch, SampleRandom)  # the loader builds batches of these


def _changes(rate: float, words: int) -> int:
    """EDA's count: ``max(1, round(rate * words))``, 0 for an empty text or a zero rate."""
    if rate <= 0 or words == 0:
        return 0
    return max(1, int(np.floor(rate * words + 0.5)))


def _match_case(word: str, like: str) -> str:
    if len(like) > 1 and like.isupper():
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _check_rate(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise InvalidArgumentError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


class _TextOp(Augmenter):
    """Shared machinery: tokenise, draw edits per row from its own generator, replay them."""

    def __init__(self, rate: float, *, tokenizer: Any = "words",
                 stop_words: Sequence[str] | None = STOP_WORDS,
                 lexicon: Mapping[str, Sequence[str]] | Lexicon | None = None) -> None:
        self.rate = _check_rate("rate", rate)
        self.tokenizer: Tokenizer = make_tokenizer(tokenizer)
        self.stop_words = frozenset(w.lower() for w in (stop_words or ()))
        self.lexicon = lexicon if lexicon is None or isinstance(lexicon, Lexicon) else Lexicon(lexicon)

    def __repr__(self) -> str:
        extra = f", source={self.source!r}" if hasattr(self, "source") else ""
        stop = "" if not self.stop_words else ", stop_words=STOP_WORDS" if (
            self.stop_words == STOP_WORDS) else f", stop_words=<{len(self.stop_words)}>"
        lexicon = "" if self.lexicon is None else f", lexicon=<{len(self.lexicon)} words>"
        return f"{type(self).__name__}({self.rate}, tokenizer={self.tokenizer.name!r}{stop}{lexicon}{extra})"

    def _lexicon(self) -> Lexicon:
        return wordnet() if self.lexicon is None else self.lexicon

    def _draw(self, words: list[str], rng: np.random.Generator) -> list[Any]:
        raise NotImplementedError

    def _edit(self, words: list[str], gaps: list[str], edits: list[Any]) -> None:
        raise NotImplementedError

    def make_params(self, rng: SampleRandom, batch: TextBatch) -> Params:
        """``{"edits": [per-row list of edits]}`` (positions and words, see each op)."""
        generators = rng.generators()
        edits = []
        for text, generator in zip(batch.texts, generators):
            edits.append([] if not text else self._draw(self.tokenizer.split(text)[0], generator))
        return {"edits": edits}

    def apply(self, batch: TextBatch, params: Params) -> TextBatch:
        texts: list[str | None] = []
        for text, edits in zip(batch.texts, params["edits"], strict=True):
            if not edits or not text:
                texts.append(text)
                continue
            words, gaps = self.tokenizer.split(text)
            self._edit(words, gaps, edits)
            texts.append("".join(g + w for g, w in zip(gaps, words)) + gaps[-1])
        return batch.with_texts(texts)

    def _eligible(self, words: list[str]) -> list[int]:
        """Positions of words that are not stop words, not a single character (WordNet reads
        the texting "u" as uranium) and have synonyms."""
        lexicon = self._lexicon()
        return [i for i, w in enumerate(words)
                if len(w) > 1 and w.lower() not in self.stop_words and lexicon.synonyms(w)]


class SynonymReplace(_TextOp):
    """Replace ``max(1, round(rate * words))`` distinct non-stop words by a synonym.

    Parameters
    ----------
    rate : float, default 0.1
        EDA's ``alpha_sr``: the share of words replaced (fewer when fewer words qualify).
    tokenizer : {"words", "jieba"}, Tokenizer or callable, default "words"
    stop_words : collection of str, default the English list
        Never replaced (case-insensitive); ``None`` protects nothing.
    lexicon : dict of str to list of str or Lexicon, optional
        Synonyms (default WordNet 3.0). A replacement keeps the word's capitalisation.

    Edits per row: ``(position, new word)`` pairs.
    """

    def __init__(self, rate: float = 0.1, *, tokenizer: Any = "words",
                 stop_words: Sequence[str] | None = STOP_WORDS,
                 lexicon: Mapping[str, Sequence[str]] | Lexicon | None = None) -> None:
        super().__init__(rate, tokenizer=tokenizer, stop_words=stop_words, lexicon=lexicon)

    def _draw(self, words: list[str], rng: np.random.Generator) -> list[Any]:
        eligible = self._eligible(words)
        count = min(_changes(self.rate, len(words)), len(eligible))
        edits = []
        for k in rng.permutation(len(eligible))[:count]:
            position = eligible[int(k)]
            choices = self._lexicon().synonyms(words[position])
            edits.append((position, _match_case(choices[int(rng.integers(len(choices)))], words[position])))
        return sorted(edits)

    def _edit(self, words: list[str], gaps: list[str], edits: list[Any]) -> None:
        for position, word in edits:
            words[position] = word


class RandomInsert(_TextOp):
    """Insert ``max(1, round(rate * words))`` words at random positions.

    Parameters
    ----------
    rate : float, default 0.1
        EDA's ``alpha_ri``.
    source : {"synonym", "word"}, optional
        ``"synonym"`` (EDA): a synonym of a random non-stop word of the text (no insertion
        when no word has one); ``"word"``: a copy of a random non-stop word of the text
        (any language). Default: ``"synonym"``, or ``"word"`` with ``tokenizer="jieba"``
        and no ``lexicon`` (WordNet is English).
    tokenizer, stop_words, lexicon
        As for :class:`SynonymReplace`.

    Edits per row: ``(position, word)`` pairs, applied in order.
    """

    def __init__(self, rate: float = 0.1, *, source: str | None = None, tokenizer: Any = "words",
                 stop_words: Sequence[str] | None = STOP_WORDS,
                 lexicon: Mapping[str, Sequence[str]] | Lexicon | None = None) -> None:
        super().__init__(rate, tokenizer=tokenizer, stop_words=stop_words, lexicon=lexicon)
        if source is None:
            source = "word" if self.tokenizer.name == "jieba" and lexicon is None else "synonym"
        if source not in ("synonym", "word"):
            raise InvalidArgumentError(f"source must be 'synonym' or 'word', got {source!r}")
        self.source = source

    def _draw(self, words: list[str], rng: np.random.Generator) -> list[Any]:
        if self.source == "synonym":
            candidates = self._eligible(words)
        else:
            candidates = [i for i, w in enumerate(words) if w.lower() not in self.stop_words]
        if not candidates:
            return []
        edits, length = [], len(words)
        for _ in range(_changes(self.rate, len(words))):
            origin = words[candidates[int(rng.integers(len(candidates)))]]
            if self.source == "synonym":
                choices = self._lexicon().synonyms(origin)
                word = choices[int(rng.integers(len(choices)))]
            else:
                word = origin
            edits.append((int(rng.integers(length + 1)), word))
            length += 1
        return edits

    def _edit(self, words: list[str], gaps: list[str], edits: list[Any]) -> None:
        for position, word in edits:
            words.insert(position, word)
            gaps.insert(position + 1 if position < len(words) - 1 else position, self.tokenizer.sep)


class RandomSwap(_TextOp):
    """Swap two distinct random words, ``max(1, round(rate * words))`` times.

    Parameters
    ----------
    rate : float, default 0.1
        EDA's ``alpha_rs``.
    tokenizer : as for :class:`SynonymReplace`
        Stop words are swapped too (as in EDA).

    Edits per row: ``(i, j)`` position pairs, applied in order.
    """

    def __init__(self, rate: float = 0.1, *, tokenizer: Any = "words") -> None:
        super().__init__(rate, tokenizer=tokenizer, stop_words=None)

    def _draw(self, words: list[str], rng: np.random.Generator) -> list[Any]:
        length = len(words)
        if length < 2:
            return []
        edits = []
        for _ in range(_changes(self.rate, length)):
            first = int(rng.integers(length))
            second = int(rng.integers(length - 1))
            edits.append((first, second + (second >= first)))
        return edits

    def _edit(self, words: list[str], gaps: list[str], edits: list[Any]) -> None:
        for first, second in edits:
            words[first], words[second] = words[second], words[first]


class RandomDelete(_TextOp):
    """Delete each word with probability ``p`` (EDA's ``p_rd``); one word always stays.

    Parameters
    ----------
    p : float, default 0.1
    tokenizer : as for :class:`SynonymReplace`
        A deleted word takes the gap after it along (the gap before, for the last word),
        so ``"Hello, big world!"`` without ``world`` is ``"Hello, big!"``.

    Edits per row: the deleted positions (ascending).
    """

    def __init__(self, p: float = 0.1, *, tokenizer: Any = "words") -> None:
        super().__init__(p, tokenizer=tokenizer, stop_words=None)

    @property
    def p(self) -> float:
        return self.rate

    def _draw(self, words: list[str], rng: np.random.Generator) -> list[Any]:
        length = len(words)
        if length <= 1 or self.rate <= 0:
            return []
        deleted = rng.random(length) < self.rate
        if deleted.all():
            deleted[int(rng.integers(length))] = False
        return [int(i) for i in np.flatnonzero(deleted)]

    def _edit(self, words: list[str], gaps: list[str], edits: list[Any]) -> None:
        for position in sorted(edits, reverse=True):
            last = position == len(words) - 1
            del words[position]
            del gaps[position if last else position + 1]


def _copies_batch(batch: TextBatch, n: int, include_original: bool) -> TextBatch:
    """``batch`` repeated row by row: copy ``k`` of row ``i`` at ``i * n + k``."""
    repeat = n + int(include_original)
    index = np.repeat(np.arange(len(batch)), repeat)
    out = batch.subset(index)
    out.copies = np.tile(np.arange(repeat, dtype=np.int64) - int(include_original), len(batch))
    return out


def augment_copies(op: Augmenter, batch: TextBatch, n: int, *, seed: int = 0, epoch: int = 0,
                   include_original: bool = False) -> TextBatch:
    """``n`` augmented copies of every row: copy ``k`` is ``op`` keyed by ``(row id, k)``.

    Returns a batch of ``len(batch) * n`` rows (row by row: the copies of row 0 first),
    with ``copies`` the copy number (``-1`` marks the originals when ``include_original``).
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidArgumentError(f"the number of copies must be a positive integer, got {n!r}")
    out = _copies_batch(batch, int(n), include_original)
    texts = list(out.texts)
    base = SampleRandom(batch.row_ids, seed=seed, epoch=epoch)
    for k in range(int(n)):
        changed = op.forward(batch, base.child(f"copy/{k}"))[0]
        for i, text in enumerate(changed.texts):
            texts[i * (int(n) + int(include_original)) + k + int(include_original)] = text
    return out.with_texts(texts)


class EDA(Augmenter):
    """Easy Data Augmentation: ``n_aug`` augmented copies of each text, each copy made by
    one of the four operations, the operations sharing the copies equally (each row's
    order of operations drawn at random, then repeated), as in Wei & Zou (2019).

    Parameters
    ----------
    alpha_sr, alpha_ri, alpha_rs, p_rd : float, default 0.1
        Rates of synonym replacement, random insertion, random swap and random deletion
        (0 turns an operation off). The paper's recommended values (its Table 3): 500
        training texts ``alpha = 0.05, n_aug = 16``; 2,000: ``0.05, 8``; 5,000: ``0.1, 4``.
    n_aug : int, default 9
    include_original : bool, default False
        Also keep each original text (``copies == -1``), before its copies.
    tokenizer, stop_words, lexicon
        As for :class:`SynonymReplace`.

    ``apply`` returns ``len(batch) * n_aug`` rows (copy ``k`` of row ``i`` at
    ``i * n_aug + k``; labels repeated): use EDA last in a pipeline, or call
    :meth:`expand`. Copy ``k`` draws from the stream ``copy/k`` of its row.
    """

    def __init__(self, alpha_sr: float = 0.1, alpha_ri: float = 0.1, alpha_rs: float = 0.1,
                 p_rd: float = 0.1, n_aug: int = 9, *, include_original: bool = False,
                 tokenizer: Any = "words", stop_words: Sequence[str] | None = STOP_WORDS,
                 lexicon: Mapping[str, Sequence[str]] | Lexicon | None = None) -> None:
        if not isinstance(n_aug, (int, np.integer)) or n_aug < 1:
            raise InvalidArgumentError(f"n_aug must be a positive integer, got {n_aug!r}")
        words = dict(tokenizer=tokenizer, stop_words=stop_words, lexicon=lexicon)
        ops: list[_TextOp] = [SynonymReplace(alpha_sr, **words), RandomInsert(alpha_ri, **words),
                              RandomSwap(alpha_rs, tokenizer=tokenizer),
                              RandomDelete(p_rd, tokenizer=tokenizer)]
        self.alpha_sr, self.alpha_ri, self.alpha_rs, self.p_rd = (op.rate for op in ops)
        self.n_aug, self.include_original = int(n_aug), include_original
        self._ops = [op for op in ops if op.rate > 0]
        if not self._ops:
            raise InvalidArgumentError("EDA needs at least one non-zero rate")

    def make_params(self, rng: SampleRandom, batch: TextBatch) -> Params:
        """Per copy: which operation each row uses and that operation's edits."""
        order = np.argsort(rng.uniform(shape=(len(self._ops),)), axis=1)
        copies = []
        for k in range(self.n_aug):
            which = order[:, k % len(self._ops)]
            inner = []
            for position, op in enumerate(self._ops):
                index = np.flatnonzero(which == position)
                sub = rng.child(f"copy/{k}").child(op.name).subset(index)
                inner.append(op.make_params(sub, batch.subset(index)) if index.size else {"edits": []})
            copies.append({"choice": which, "params": inner})
        return {"copies": copies}

    def apply(self, batch: TextBatch, params: Params) -> TextBatch:
        step = self.n_aug + int(self.include_original)
        out = _copies_batch(batch, self.n_aug, self.include_original)
        texts = list(out.texts)
        for k, drawn in enumerate(params["copies"]):
            for position, op in enumerate(self._ops):
                index = np.flatnonzero(np.asarray(drawn["choice"]) == position)
                if index.size:
                    changed = op.apply(batch.subset(index), drawn["params"][position])
                    for j, i in enumerate(index):
                        texts[int(i) * step + k + int(self.include_original)] = changed.texts[j]
        return out.with_texts(texts)

    def with_copies(self, n_aug: int, include_original: bool = False) -> EDA:
        """The same operations making ``n_aug`` copies (and the originals when asked)."""
        if not isinstance(n_aug, (int, np.integer)) or n_aug < 1:
            raise InvalidArgumentError(f"n_aug must be a positive integer, got {n_aug!r}")
        other = copy.copy(self)
        other.n_aug, other.include_original = int(n_aug), include_original
        return other

    def expand(self, batch: TextBatch, *, seed: int = 0, epoch: int = 0) -> TextBatch:
        """The augmented copies of ``batch`` (draws keyed by its ``row_ids``)."""
        return self(batch, seed=seed, epoch=epoch)

    def augment(self, texts: Sequence[str | None], *, row_ids: Sequence[int] | None = None,
                labels: Sequence[Any] | None = None, seed: int = 0) -> TextBatch:
        """:meth:`expand` on plain lists (row ids default to ``0..len(texts) - 1``)."""
        ids = np.arange(len(texts)) if row_ids is None else np.asarray(row_ids)
        return self.expand(TextBatch(list(texts), ids, None if labels is None else np.asarray(labels)),
                           seed=seed)
