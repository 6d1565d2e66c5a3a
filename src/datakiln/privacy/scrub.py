"""``scrub``: find PII *inside* free text and replace it by a tag or a pseudonym.

Found: e-mail addresses; phone numbers written as phone numbers (``+44 20 7946 0958``,
``(555) 010-9999``, ``555-010-9999``, ``555-0199``); payment card numbers (13–19 digits
written together, in groups of four, or 4-6-5) that pass the Luhn check; IPv4 and IPv6
addresses (checked with :mod:`ipaddress`). Ordinary numbers stay: ``12345``, ``3.14``,
``1,000,000``, ``2024-01-15``, ``1999-2004``, a 16-digit number that fails the Luhn check.
Digits next to a card number can be read as part of it when the longer number also passes
the Luhn check (one time in ten): such a false positive is replaced too, the safe side.

Rows are first screened with one vectorised Arrow regular expression; only rows that may
hold PII go through Python's :mod:`re` (with the Luhn and address checks).

Replacements: ``replace="tag"`` (default) writes ``<EMAIL>``, ``<PHONE>``, ``<CARD>``,
``<IP>``; ``replace="pseudonym"`` writes format-preserving pseudonyms for e-mails and phone
numbers (the same ones :class:`~datakiln.privacy.pseudonym.Pseudonymize` gives in that
namespace, so a scrubbed note still names the same pseudonymous customer) and tags for
cards and IP addresses.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError
from datakiln.privacy.operators import Operator, _text, register

__all__ = ["PATTERN", "Scrub", "find_pii", "luhn_valid"]

_EMAIL = r"(?P<email>(?<![\w.+'%-])[\w.+'%-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-]))"
_IPV4 = (r"(?P<ipv4>(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
         r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\w))")
_IPV6 = r"(?P<ipv6>(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:]))"
_CARD = (r"(?P<card>(?<![\w-])(?:\d{13,19}|\d{4}(?P<sep>[ -])\d{4}(?P=sep)\d{4}(?P=sep)\d{1,7}"
         r"|\d{4}(?P<amex>[ -])\d{6}(?P=amex)\d{4,5})(?![\w-]))")
_PHONE = (r"(?P<phone>(?<![\w+])(?:\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,5}"
          r"|\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"
          r"|\d{3}[-.]\d{3}[-.]\d{4}|\d{3}-\d{4})(?![\w]))")
#: the whole search, in priority order
PATTERN = re.compile("|".join((_EMAIL, _IPV4, _IPV6, _CARD, _PHONE)))
#: a cheap, vectorised screen: rows not matching it hold nothing PATTERN finds
_SCREEN = r"@|\d[\d ().-]{5,}\d|\+\d|\d\.\d+\.\d+\.\d|[0-9A-Fa-f]*:[0-9A-Fa-f]*:"
TAGS = {"email": "<EMAIL>", "phone": "<PHONE>", "card": "<CARD>", "ip": "<IP>"}


def luhn_valid(text: str) -> bool:
    """Whether the digits of ``text`` pass the Luhn check (payment card numbers do).

    >>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112")
    (True, False)
    """
    digits = [int(ch) for ch in text if ch.isdigit()]
    total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    return bool(digits) and total % 10 == 0


def _phone_like(text: str) -> bool:
    return 7 <= sum(ch.isdigit() for ch in text) <= 15


def _classify(match: re.Match[str]) -> str | None:
    """The PII type of a match, or None when the checks say it is an ordinary number."""
    kind = match.lastgroup
    text = match.group()
    if kind == "ipv4":
        return "ip"
    if kind == "ipv6":
        if not any(ch not in ":" for ch in text):
            return None
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            return None
        return "ip"
    if kind == "card":
        if luhn_valid(text):
            return "card"
        return "phone" if re.fullmatch(_PHONE, text) and _phone_like(text) else None
    if kind == "phone":
        return "phone" if _phone_like(text) else None
    return kind


def find_pii(text: str) -> list[tuple[str, str]]:
    """``[(type, text), ...]`` of the PII found in ``text``, in order.

    >>> find_pii("mail bob@example.org or call +1 555 010 9999, order 12345")
    [('email', 'bob@example.org'), ('phone', '+1 555 010 9999')]
    """
    return [(kind, match.group()) for match, kind in _scan(text)]


def _scan(text: str) -> Iterator[tuple[re.Match[str], str]]:
    """Matches that pass their checks, with their type; a candidate that fails (a 16-digit
    number that is not a card) is skipped by one character only, so a card right after it
    is still found."""
    position = 0
    while True:
        match = PATTERN.search(text, position)
        if match is None:
            return
        kind = _classify(match)
        if kind:
            yield match, kind
            position = match.end()
        else:
            position = match.start() + 1


@register
class Scrub(Operator):
    """Replace e-mails, phone numbers, Luhn-valid card numbers and IP addresses inside text.

    Parameters
    ----------
    replace : {"tag", "pseudonym"}, default "tag"
        ``<EMAIL>``-style tags, or format-preserving pseudonyms for e-mails and phones (needs
        a key; cards and IP addresses still get tags).
    types : list of str, optional
        Which of ``email``, ``phone``, ``card``, ``ip`` to replace (default: all).
    namespace, version :
        Of the pseudonym key (as :class:`~datakiln.privacy.pseudonym.Pseudonymize`).
    """

    name = "scrub"

    def __init__(self, replace: str = "tag", types: list[str] | None = None, namespace: str = "default",
                 version: int = 1) -> None:
        self.replace, self.types, self.namespace, self.version = replace, types, namespace, version
        self._cipher: Any = None

    @property
    def needs_key(self) -> bool:  # type: ignore[override]
        return self.replace == "pseudonym"

    def validate(self, column: str) -> None:
        if self.replace not in ("tag", "pseudonym"):
            raise InvalidArgumentError(f"column {column!r}: scrub replace must be 'tag' or 'pseudonym', "
                                       f"got {self.replace!r}")
        bad = sorted(set(self.types or []) - set(TAGS))
        if bad or (self.types is not None and not isinstance(self.types, list)):
            raise InvalidArgumentError(f"column {column!r}: scrub types must be a list of {sorted(TAGS)}, "
                                       f"got {self.types!r}")

    def bind(self, column: str, dtype: pa.DataType, kind: str | None, pii: str | None,
             key: Any) -> None:
        from datakiln.privacy.pseudonym import PURPOSE_FPE, Pseudonymize

        self.column = column
        if self.replace == "pseudonym":
            helper = Pseudonymize("email", namespace=self.namespace, version=self.version)
            helper.bind(column, pa.string(), kind, pii, key)
            self._cipher = helper._key
            self.key_id, self.purpose = key.key_id, PURPOSE_FPE

    def output_type(self, dtype: pa.DataType) -> pa.DataType:
        return dtype if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) else pa.string()

    def apply(self, values: pa.Array, offset: int) -> pa.Array:
        return self.apply_counted(values, offset)[0]

    def apply_counted(self, values: pa.Array, offset: int) -> tuple[pa.Array, dict[str, int]]:
        text = _text(values)
        screen = pc.fill_null(pc.match_substring_regex(text, _SCREEN), False)
        rows = pc.indices_nonzero(screen).to_numpy()
        if not len(rows):
            return text, {}
        originals = pc.take(text, pa.array(rows)).to_pylist()
        wanted = set(self.types or TAGS)
        found = [[(m, kind) for m, kind in _scan(value) if kind in wanted] for value in originals]
        pseudonyms = self._pseudonyms(found)
        counts: Counter[str] = Counter()
        changed = []
        for value, matches in zip(originals, found):
            pieces, last = [], 0
            for match, kind in matches:
                counts[kind] += 1
                pieces.append(value[last:match.start()])
                pieces.append(pseudonyms.get((kind, match.group()), TAGS[kind]))
                last = match.end()
            changed.append("".join(pieces) + value[last:] if matches else value)
        return pc.replace_with_mask(text, screen, pa.array(changed, text.type)), dict(counts)

    def _pseudonyms(self, found: list[list[tuple[re.Match[str], str]]]) -> dict[tuple[str, str], str]:
        if self.replace != "pseudonym":
            return {}
        out: dict[tuple[str, str], str] = {}
        for kind in ("email", "phone"):
            distinct = sorted({m.group() for matches in found for m, k in matches if k == kind})
            if distinct:
                encrypted = self._cipher.encrypt(pa.array(distinct, pa.string()), kind).to_pylist()
                out.update({(kind, a): b for a, b in zip(distinct, encrypted)})
        return out

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"replace": self.replace, "types": list(self.types or TAGS)}
        if self.replace == "pseudonym":
            out.update(namespace=self.namespace, key_version=self.version)
            if getattr(self, "key_id", None):
                out["key_id"] = self.key_id
        return out
