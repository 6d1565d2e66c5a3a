"""Per-sample random draws keyed by ``(seed, epoch, row id, stream)``.

An augmentation must treat a row the same whatever batch it lands in, whatever the batch
size, thread count, DataLoader worker or rank: so no draw may come from a generator that
walks through the batch. Each draw here is a counter-based hash (splitmix64) of the key
(seed and epoch), the op's stream, the call's counter, the row's id in the dataset and the
element index, computed for the whole batch at once with NumPy. Ops make the same
sequence of calls whatever the batch holds (a fixed number of tries, never a loop until
success), so a row's parameters depend only on its id.

Pixel-level noise wants millions of values per image: :meth:`SampleRandom.generators` gives
one ``numpy.random.Generator`` (Philox, keyed the same way) per row instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from datakiln.dataset._permute import _MULTIPLIER as _FEISTEL_MULTIPLIER
from datakiln.dataset._permute import permute
from datakiln.dataset._sketches import mix64
from datakiln.errors import InvalidArgumentError

__all__ = ["SampleRandom", "partner_rows"]

_STREAM = np.uint64(0xD1B54A32D192ED03)
_COUNTER = np.uint64(0xAEF17502108EF2D9)
_ELEMENT = np.uint64(0x9E3779B97F4A7C15)
_TO_UNIT = 2.0 ** -53


def _key(seed: int, epoch: int) -> int:
    digest = hashlib.sha256(f"datakiln.augment:{int(seed)}:{int(epoch)}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _name_hash(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


class SampleRandom:
    """Random draws for a batch of rows, each row's values a pure function of its id.

    Parameters
    ----------
    row_ids : array of int
        The rows' ids in the dataset (not their positions in the epoch).
    seed, epoch : int
        The loader's seed and epoch (default 0, 0).

    Every method returns one value (or one ``shape``-shaped block) per row: an array of
    shape ``(n, *shape)``. Successive calls give fresh values (a per-call counter);
    :meth:`child` opens an independent stream for a named op.

    >>> r = SampleRandom(np.array([5, 9]), seed=1)
    >>> a = r.uniform(); b = SampleRandom(np.array([9]), seed=1).uniform()
    >>> bool(a[1] == b[0])
    True
    """

    def __init__(self, row_ids: Sequence[int] | np.ndarray, *, seed: int = 0, epoch: int = 0,
                 _key_value: int | None = None, _stream: int = 0) -> None:
        self.row_ids = np.asarray(row_ids, dtype=np.int64).reshape(-1)
        self.seed, self.epoch = int(seed), int(epoch)
        self._keyv = _key(seed, epoch) if _key_value is None else _key_value
        self._stream = _stream
        self._calls = 0

    def __len__(self) -> int:
        return int(self.row_ids.size)

    def child(self, name: str) -> SampleRandom:
        """An independent stream for ``name`` (an op's path in a pipeline, e.g. ``"2/flip"``)."""
        stream = int(mix64(np.array([self._stream ^ _name_hash(name)], dtype=np.uint64))[0])
        return SampleRandom(self.row_ids, seed=self.seed, epoch=self.epoch,
                            _key_value=self._keyv, _stream=stream)

    def subset(self, index: np.ndarray) -> SampleRandom:
        """The same stream restricted to some rows (their values unchanged)."""
        out = SampleRandom(self.row_ids[index], seed=self.seed, epoch=self.epoch,
                           _key_value=self._keyv, _stream=self._stream)
        out._calls = self._calls
        return out

    # -- raw bits ------------------------------------------------------------------------
    def _bits(self, shape: tuple[int, ...]) -> np.ndarray:
        call = self._calls
        self._calls += 1
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        with np.errstate(over="ignore"):
            base = mix64(self.row_ids.astype(np.uint64) ^ np.uint64(self._keyv))
            base = base ^ (np.uint64(self._stream) * _STREAM) ^ (np.uint64(call + 1) * _COUNTER)
            elements = np.arange(count, dtype=np.uint64) * _ELEMENT
            bits = mix64(base[:, None] + elements[None, :])
        return bits.reshape((len(self),) + tuple(shape))

    # -- distributions -------------------------------------------------------------------
    def uniform(self, low: float | np.ndarray = 0.0, high: float | np.ndarray = 1.0,
                shape: tuple[int, ...] = ()) -> np.ndarray:
        """Uniform floats in ``[low, high)`` (float64); ``low``/``high`` may be per-row arrays."""
        unit = (self._bits(shape) >> np.uint64(11)).astype(np.float64) * _TO_UNIT
        low_a, high_a = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        if low_a.ndim == 1 and shape:
            low_a = low_a.reshape((-1,) + (1,) * len(shape))
        if high_a.ndim == 1 and shape:
            high_a = high_a.reshape((-1,) + (1,) * len(shape))
        return low_a + unit * (high_a - low_a)

    def integers(self, low: int | np.ndarray, high: int | np.ndarray,
                 shape: tuple[int, ...] = ()) -> np.ndarray:
        """Integers in ``[low, high)`` (int64); ``high > low`` per row (arrays allowed)."""
        value = np.floor(self.uniform(low, high, shape)).astype(np.int64)
        high_a = np.asarray(high, dtype=np.int64)
        if high_a.ndim == 1 and shape:
            high_a = high_a.reshape((-1,) + (1,) * len(shape))
        return np.minimum(value, high_a - 1)

    def bernoulli(self, p: float | np.ndarray, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Booleans, True with probability ``p``."""
        return self.uniform(0.0, 1.0, shape) < p

    def normal(self, loc: float = 0.0, scale: float = 1.0,
               shape: tuple[int, ...] = ()) -> np.ndarray:
        """Normal floats (Box-Muller on two uniform draws)."""
        u1 = 1.0 - self.uniform(0.0, 1.0, shape)  # (0, 1]: log is finite
        u2 = self.uniform(0.0, 1.0, shape)
        return loc + scale * np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)

    def choice(self, k: int, p: Sequence[float] | None = None) -> np.ndarray:
        """One index in ``[0, k)`` per row, uniform or with probabilities ``p``."""
        if p is None:
            return self.integers(0, k)
        weights = np.asarray(p, dtype=np.float64)
        cumulative = np.cumsum(weights / weights.sum())
        return np.minimum(np.searchsorted(cumulative, self.uniform(), side="right"), k - 1)

    def generators(self) -> list[np.random.Generator]:
        """One Philox generator per row, keyed by (seed, epoch, stream, call, row id)."""
        words = self._bits((2,))
        return [np.random.Generator(np.random.Philox(key=[int(a), int(b)])) for a, b in words]


def _unpermute(values: np.ndarray, n: int, key: int) -> np.ndarray:
    """The inverse of :func:`~datakiln.dataset._permute.permute` (same key schedule): its
    Feistel rounds undone in reverse order, with the same cycle walking."""
    if n <= 1:
        return values.astype(np.uint64)
    bits = max(2, int(np.ceil(np.log2(n))))
    high, low = bits - bits // 2, bits // 2
    keys = list(mix64(np.arange(4, dtype=np.uint64) + np.uint64(key % 2**62) * np.uint64(4)))
    widths, shift = (high, low), np.uint64(32)

    def backward(x: np.ndarray) -> np.ndarray:
        left, right = x >> np.uint64(low), x & np.uint64((1 << low) - 1)
        with np.errstate(over="ignore"):
            for round_index in range(len(keys) - 1, -1, -1):
                mixed = (left ^ keys[round_index]) * _FEISTEL_MULTIPLIER
                mask = np.uint64((1 << widths[round_index % 2]) - 1)
                left, right = right ^ ((mixed ^ (mixed >> shift)) & mask), left
        return (left << np.uint64(low)) | right

    x = backward(values.astype(np.uint64))
    outside = np.nonzero(x >= np.uint64(n))[0]
    while outside.size:
        x[outside] = backward(x[outside])
        outside = outside[x[outside] >= np.uint64(n)]
    return x


def partner_rows(row_ids: np.ndarray, n_rows: int, *, seed: int = 0, epoch: int = 0,
                 name: str = "mix") -> np.ndarray:
    """Each row's MixUp/CutMix partner: the next row in a keyed shuffle of ``[0, n_rows)``.

    With ``pi`` the keyed bijection, row ``r``'s partner is ``pi^-1(pi(r) + 1 mod n)``: one
    cycle through every row, so the map is itself a bijection with **no fixed point** (a
    row is never mixed with itself when ``n_rows >= 2``; a plain keyed permutation leaves
    about one row per epoch unmixed). The partner depends only on the row id (and seed,
    epoch, ``name``), never on the batch, so a row is mixed with the same partner whatever
    the batch size, threads or rank.
    """
    key = (_key(seed, epoch) ^ _name_hash(name)) % 2**62
    ids = np.asarray(row_ids, dtype=np.int64)
    n = int(n_rows)
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise InvalidArgumentError(f"partner_rows: row ids must lie in [0, n_rows={n}), got "
                                   f"{int(ids.min())}..{int(ids.max())}")
    if n <= 1:
        return ids.copy()
    position = permute(ids.astype(np.uint64), n, key).astype(np.int64)
    return _unpermute(((position + 1) % n).astype(np.uint64), n, key).astype(np.int64)
