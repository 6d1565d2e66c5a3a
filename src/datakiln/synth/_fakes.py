"""Format-valid fake values for PII columns: never the training values.

Addresses use the reserved TEST-NET-1 range for IPs, 555-01xx phone numbers, the
example.com domain, and card numbers from a test prefix with a valid Luhn check digit.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["fake_values"]


def fake_values(kind: str | None, n: int, rng: np.random.Generator, dtype: pa.DataType) -> pa.Array:
    """``n`` fake values of a PII ``kind`` (email, phone, ip, credit_card, address, name)."""
    numbers = rng.integers(0, 10**6, n)
    if kind == "email":
        values = [f"user{v:06d}@example.com" for v in numbers]
    elif kind == "phone":
        values = [f"+1-555-01{v % 100:02d}" for v in numbers]
    elif kind == "ip":
        values = [f"192.0.2.{v % 254 + 1}" for v in numbers]  # TEST-NET-1, never routed
    elif kind == "credit_card":
        values = [luhn_complete(f"400000{v:09d}") for v in numbers]
    elif kind == "address":
        values = [f"{v % 9999 + 1} Example Street" for v in numbers]
    else:
        values = [f"Person {v:06d}" for v in numbers]
    return pa.array(values).cast(dtype)


def luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it Luhn-valid."""
    digits = [int(c) for c in body]
    total = sum(sum(divmod(2 * d, 10)) if i % 2 == 0 else d for i, d in enumerate(reversed(digits)))
    return body + str((10 - total % 10) % 10)


# -- placeholder text ------------------------------------------------------------------------
# Free text is never modelled word by word here (a real text model comes later): a text
# column keeps its length distribution (modelled in the copula, so e.g. spam stays longer
# than ham) and gets placeholder text of that length, cut from a fixed word cycle.
_WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
          "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris "
          "nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse "
          "cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui "
          "officia deserunt mollit anim id est laborum").split()
_CYCLE = " ".join(_WORDS) + " "
_STARTS = np.array([0] + [i + 1 for i, ch in enumerate(_CYCLE[:-1]) if ch == " "], dtype=np.int64)
PLACEHOLDER_PATTERN = r"^[a-z][a-z ]*$"  # every placeholder text matches (a cheap pre-filter)


def _placeholder(start: int, length: int) -> str:
    repeats = (start + length) // len(_CYCLE) + 1
    return (_CYCLE * repeats)[start:start + length]


def placeholder_collisions(values: list[str]) -> list[str]:
    """The ``values`` the placeholder generator could produce (so it must avoid them).

    Call it with training texts that match :data:`PLACEHOLDER_PATTERN`; real messages
    almost never are exact cuts of the word cycle, so the list is short (and holds only
    placeholder words, never real content).
    """
    found = []
    for value in values:
        if any(_placeholder(int(s), len(value)) == value for s in _STARTS):
            found.append(value)
    return found


def placeholder_text(lengths: np.ndarray, rng: np.random.Generator, dtype: pa.DataType,
                     mask: np.ndarray | None = None, avoid: frozenset[str] = frozenset()) -> pa.Array:
    """Placeholder texts of the given character ``lengths``, none of them in ``avoid``.

    Each text is cut from a fixed cycle of Latin filler words at a random word start; a cut
    that equals a value in ``avoid`` (a training text) moves to the next word start, and
    when every start collides its last letters are changed; so no text of ``avoid`` (the
    training texts that look like filler) is ever produced, except the empty string.
    """
    starts = _STARTS[rng.integers(0, len(_STARTS), len(lengths))]
    values = []
    for index, (start, length) in enumerate(zip(starts.tolist(), np.maximum(lengths, 0).astype(np.int64)
                                                 .tolist())):
        if mask is not None and mask[index]:
            values.append(None)
            continue
        text = _placeholder(start, length)
        if avoid and text in avoid and length:
            text = _avoid(start, length, avoid)
        values.append(text)
    return pa.array(values, type=pa.string()).cast(dtype)


def _avoid(start: int, length: int, avoid: frozenset[str]) -> str:
    position = int(np.searchsorted(_STARTS, start))
    for step in range(1, len(_STARTS)):
        text = _placeholder(int(_STARTS[(position + step) % len(_STARTS)]), length)
        if text not in avoid:
            return text
    base = _placeholder(start, length)
    for number in range(len(avoid) + 1):  # at most len(avoid) variants can collide
        suffix = np.base_repr(number, 26).lower().translate(str.maketrans("0123456789", "qrstuvwxyz"))
        text = base[: max(length - len(suffix), 0)] + suffix[-length:]
        if text not in avoid:
            return text
    raise AssertionError("unreachable: more variants than values to avoid")  # pragma: no cover
