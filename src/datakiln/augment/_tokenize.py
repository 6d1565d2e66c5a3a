"""Tokenisers for the text ops, and the English stop-word list.

A text is split into **words** and the **gaps** around them, ``gaps[0] + words[0] +
gaps[1] + ... + words[-1] + gaps[-1]``, so an op that replaces, swaps, inserts or deletes
words keeps everything else (punctuation, spacing, line breaks) as it was, and a text no
op touched comes back byte for byte. A word is a run of letters or digits, with inner
apostrophes and hyphens (``don't``, ``well-known``); everything else is gap.

``"jieba"`` segments Chinese with jieba (MIT, the ``text`` extra): each segment with a
letter or digit is a word, and words are inserted without a space. Any callable that
returns a list of token strings is a tokeniser too (``sep`` is put between an inserted
word and its neighbour).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from datakiln._optional import import_optional
from datakiln.errors import InvalidArgumentError

__all__ = ["STOP_WORDS", "CallableTokenizer", "JiebaTokenizer", "Tokenizer", "WordTokenizer",
           "make_tokenizer"]

#: English stop words the text ops never replace or take synonyms from (written for
#: datakiln: articles, pronouns, auxiliaries, prepositions, conjunctions, negations and
#: common adverbs of degree; all lower case, with and without apostrophes)
STOP_WORDS = frozenset("""
a about above after again against ain all also am an and any are aren aren't as at be
because been before being below between both but by can can't cannot could couldn couldn't
did didn didn't do does doesn doesn't doing don don't down during each either else ever
every few for from further had hadn hadn't has hasn hasn't have haven haven't having he
he'd he'll he's her here here's hers herself him himself his how how's however i i'd i'll
i'm i've if in into is isn isn't it it's its itself just let's ll may me might mightn
mightn't more most must mustn mustn't my myself neither no nor not now o of off on once
only or other ought our ours ourselves out over own re s same shall shan shan't she she'd
she'll she's should shouldn shouldn't so some such t than that that's the their theirs
them themselves then there there's these they they'd they'll they're they've this those
though through to too under until up upon us ve very was wasn wasn't we we'd we'll we're
we've were weren weren't what what's when when's where where's whether which while who
who's whom whose why why's will with won won't would wouldn wouldn't y yet you you'd
you'll you're you've your yours yourself yourselves
""".split())

_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
_HAS_WORD_CHAR = re.compile(r"[^\W_]")


class Tokenizer:
    """Splits a text into words and the gaps between them (see the module docstring).

    Attributes
    ----------
    sep : str
        Put between an inserted word and its neighbour (``" "``; ``""`` for Chinese).
    """

    sep: str = " "
    name: str = "tokenizer"

    def split(self, text: str) -> tuple[list[str], list[str]]:
        """``(words, gaps)`` with ``len(gaps) == len(words) + 1``."""
        raise NotImplementedError

    def count(self, text: str) -> int:
        """The number of words in ``text``."""
        return len(self.split(text)[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class WordTokenizer(Tokenizer):
    """Words are runs of letters and digits (Unicode), with inner ``'`` and ``-``."""

    name = "words"

    def split(self, text: str) -> tuple[list[str], list[str]]:
        words, gaps, end = [], [], 0
        for match in _WORD.finditer(text):
            gaps.append(text[end:match.start()])
            words.append(match.group())
            end = match.end()
        gaps.append(text[end:])
        return words, gaps


def _from_tokens(tokens: list[str], text: str) -> tuple[list[str], list[str]]:
    """Words and gaps from a tokeniser's tokens (tokens without a letter or digit, and any
    text the tokens skipped, go to the gaps)."""
    words: list[str] = []
    gaps: list[str] = [""]
    position = 0
    for token in tokens:
        found = text.find(token, position) if token else -1
        if found >= 0:
            gaps[-1] += text[position:found]
            position = found + len(token)
        if _HAS_WORD_CHAR.search(token) and not token.isspace():
            words.append(token)
            gaps.append("")
        else:
            gaps[-1] += token
    gaps[-1] += text[position:]
    return words, gaps


class JiebaTokenizer(Tokenizer):
    """Chinese word segmentation with jieba (``pip install 'datakiln[text]'``)."""

    sep = ""
    name = "jieba"

    def __init__(self) -> None:
        self._jieba = import_optional("jieba", extra="text")
        self._jieba.setLogLevel(logging.WARNING)  # its dictionary banner is not ours to print

    def split(self, text: str) -> tuple[list[str], list[str]]:
        return _from_tokens(self._jieba.lcut(text), text)


class CallableTokenizer(Tokenizer):
    """A user's callable ``text -> list of token strings``."""

    name = "callable"

    def __init__(self, function: Callable[[str], list[str]], sep: str = " ") -> None:
        self.function, self.sep = function, sep

    def split(self, text: str) -> tuple[list[str], list[str]]:
        tokens = self.function(text)
        if not isinstance(tokens, (list, tuple)) or not all(isinstance(t, str) for t in tokens):
            raise InvalidArgumentError(f"a tokenizer callable must return a list of strings, got "
                                       f"{type(tokens).__name__} for {text[:40]!r}")
        return _from_tokens(list(tokens), text)

    def __repr__(self) -> str:
        return f"CallableTokenizer({getattr(self.function, '__name__', self.function)!r})"


def make_tokenizer(tokenizer: Any) -> Tokenizer:
    """``"words"`` (default), ``"jieba"``, a :class:`Tokenizer` or a callable → a Tokenizer."""
    if tokenizer is None or tokenizer == "words":
        return WordTokenizer()
    if tokenizer == "jieba":
        return JiebaTokenizer()
    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    if callable(tokenizer):
        return CallableTokenizer(tokenizer)
    raise InvalidArgumentError(f"tokenizer must be 'words', 'jieba', a Tokenizer or a callable "
                               f"returning a list of strings, got {tokenizer!r}")
