"""Per-column anonymisation operators: the contract, a registry, and the simple ones.

An :class:`Operator` changes one column of each Arrow batch (``apply(values, offset)``,
``offset`` being the batch's first row number in the whole data) and never the number of
rows, so anonymisation streams batch by batch. Operators are built from plain data (a
``privacy.yaml`` entry such as ``{op: mask, keep_last: 4}``, see :func:`make_operator`), say
what they did as plain data (:meth:`Operator.params`), and are bound to their column before
use (its type, kind and, for keyed operators, the key).

Here: ``keep``, ``mask``, ``redact``, ``suppress`` and ``noise``. ``pseudonymize`` lives in
:mod:`datakiln.privacy.pseudonym`, ``generalize`` in :mod:`datakiln.privacy.generalize` and
``scrub`` (PII inside free text) in :mod:`datakiln.privacy.scrub`.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.dataset._sketches import mix64
from datakiln.errors import InvalidArgumentError, SchemaError

__all__ = ["OPERATORS", "Keep", "Mask", "Noise", "Operator", "Redact", "Suppress", "make_operator",
           "register"]

OPERATORS: dict[str, type[Operator]] = {}


def register(cls: type[Operator]) -> type[Operator]:
    """Class decorator: make ``cls`` available by its ``name`` to :func:`make_operator`."""
    OPERATORS[cls.name] = cls
    return cls


def _load_all() -> None:
    from datakiln.privacy import generalize, pseudonym, scrub  # noqa: F401  (they register)


def make_operator(spec: str | Mapping[str, Any], column: str = "?") -> Operator:
    """An operator from plain data: ``"redact"`` or ``{"op": "mask", "keep_last": 4}``.

    Unknown operators or parameters raise :class:`InvalidArgumentError` naming the column and
    what is allowed.

    >>> make_operator({"op": "mask", "keep_last": 4}).params()
    {'keep_last': 4, 'char': '*', 'keep_format': False}
    """
    _load_all()
    if isinstance(spec, str):
        spec = {"op": spec}
    if not isinstance(spec, Mapping) or "op" not in spec:
        raise InvalidArgumentError(f"column {column!r}: an operator is a name or a mapping with 'op', "
                                   f"e.g. {{op: mask, keep_last: 4}}; got {spec!r}")
    params = {str(k): v for k, v in spec.items() if k != "op"}
    cls = OPERATORS.get(str(spec["op"]))
    if cls is None:
        raise InvalidArgumentError(f"column {column!r}: unknown operator {spec['op']!r}; choose one of "
                                   f"{sorted(OPERATORS)}")
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidArgumentError(f"column {column!r}: operator {cls.name!r} has no parameter(s) "
                                   f"{unknown}; its parameters are {allowed}")
    operator = cls(**params)
    operator.validate(column)
    return operator


def as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous Arrow array."""
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 1:
            return values.chunk(0)
        return values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    return values


def _text(values: pa.Array) -> pa.Array:
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    if pa.types.is_dictionary(values.type):
        return values.cast(values.type.value_type).cast(pa.string())
    return values.cast(pa.string())


class Operator:
    """One anonymisation step on one column (see the module docstring).

    Subclasses set ``name``, store their keyword arguments in ``__init__`` (no checks there),
    check them in :meth:`validate` and implement :meth:`apply`.
    """

    name: ClassVar[str] = "operator"
    #: needs a secret key (``bind`` receives it)
    needs_key: ClassVar[bool] = False
    #: needs one pass over the column before ``apply`` (``prepare`` receives its batches)
    needs_pass: ClassVar[bool] = False
    #: removes the column instead of changing it
    drops_column: bool = False

    def validate(self, column: str) -> None:
        """Check the parameters; raise :class:`InvalidArgumentError` naming ``column``."""

    def bind(self, column: str, dtype: pa.DataType, kind: str | None, pii: str | None,
             key: Any) -> None:
        """Learn the column this operator changes: name, Arrow type, kind, PII type and key."""
        self.column = column

    def prepare(self, batches: Iterable[pa.Array]) -> None:
        """See every batch of the column once before ``apply`` (when ``needs_pass``)."""

    def output_type(self, dtype: pa.DataType) -> pa.DataType:
        """The Arrow type of the column after this operator (default: unchanged)."""
        return dtype

    def apply(self, values: pa.Array, offset: int) -> pa.Array:  # pragma: no cover - abstract
        """The changed column for one batch; ``offset`` is its first row number overall."""
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The parameters as plain data, for the report."""
        return {}

    def apply_counted(self, values: pa.Array, offset: int) -> tuple[pa.Array, dict[str, int]]:
        """:meth:`apply` plus operator-specific counts for this batch (e.g. PII found per type)."""
        return self.apply(values, offset), {}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({inner})"


@register
class Keep(Operator):
    """Leave the column as it is (to opt a detected PII column out of the defaults)."""

    name = "keep"

    def apply(self, values: pa.Array, offset: int) -> pa.Array:
        return values


@register
class Mask(Operator):
    """Replace every character but the last ``keep_last`` by ``char``.

    A value of ``keep_last`` characters or fewer is masked completely, so a short value never
    shows whole. With ``keep_format`` only letters and digits are masked (and counted), so
    ``4111-1111-1111-1111`` becomes ``****-****-****-1111``. Non-text columns are masked as text.

    Parameters
    ----------
    keep_last : int, default 0
        Characters (letters and digits with ``keep_format``) left visible at the end.
    char : str, default "*"
        The one character that replaces the others.
    keep_format : bool, default False
        Keep punctuation and spaces in place.
    """

    name = "mask"

    def __init__(self, keep_last: int = 0, char: str = "*", keep_format: bool = False) -> None:
        self.keep_last, self.char, self.keep_format = keep_last, char, keep_format

    def validate(self, column: str) -> None:
        if not isinstance(self.keep_last, int) or isinstance(self.keep_last, bool) or self.keep_last < 0:
            raise InvalidArgumentError(f"column {column!r}: mask keep_last must be a whole number >= 0, "
                                       f"got {self.keep_last!r}")
        if not isinstance(self.char, str) or len(self.char) != 1:
            raise InvalidArgumentError(f"column {column!r}: mask char must be one character, got "
                                       f"{self.char!r}")

    def output_type(self, dtype: pa.DataType) -> pa.DataType:
        return dtype if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) else pa.string()

    def apply(self, values: pa.Array, offset: int) -> pa.Array:
        text = _text(values)
        if self.keep_format:
            return _per_distinct(text, self._mask_one)
        length = pc.utf8_length(text)
        everything = pc.binary_repeat(self.char, length)
        if not self.keep_last:
            return everything
        stars = pc.binary_repeat(self.char, pc.max_element_wise(pc.subtract(length, self.keep_last), 0))
        shown = pc.binary_join_element_wise(stars, pc.utf8_slice_codeunits(text, -self.keep_last), "")
        return pc.if_else(pc.less_equal(length, self.keep_last), everything, shown)

    def _mask_one(self, value: str) -> str:
        places = [m.start() for m in re.finditer(r"[^\W_]", value)]
        hide = set(places if len(places) <= self.keep_last else places[:len(places) - self.keep_last])
        return "".join(self.char if i in hide else ch for i, ch in enumerate(value))

    def params(self) -> dict[str, Any]:
        return {"keep_last": self.keep_last, "char": self.char, "keep_format": self.keep_format}


def _per_distinct(values: pa.Array, fn: Any, out_type: pa.DataType = pa.string()) -> pa.Array:
    """``fn`` applied once per distinct value (nulls stay null)."""
    encoded = pc.dictionary_encode(values)
    mapped = pa.array([fn(v) for v in encoded.dictionary.to_pylist()], out_type)
    return pc.take(mapped, encoded.indices)


@register
class Redact(Operator):
    """Replace every non-null value by ``value`` (default ``"[REDACTED]"``; ``None`` = null)."""

    name = "redact"

    def __init__(self, value: str | None = "[REDACTED]") -> None:
        self.value = value

    def validate(self, column: str) -> None:
        if self.value is not None and not isinstance(self.value, str):
            raise InvalidArgumentError(f"column {column!r}: redact value must be text or null, got "
                                       f"{self.value!r}")

    def output_type(self, dtype: pa.DataType) -> pa.DataType:
        return dtype if self.value is None else pa.string()

    def apply(self, values: pa.Array, offset: int) -> pa.Array:
        if self.value is None:
            return pa.nulls(len(values), values.type)
        return pc.if_else(values.is_null(), pa.scalar(None, pa.string()), pa.scalar(self.value))

    def params(self) -> dict[str, Any]:
        return {"value": self.value}


@register
class Suppress(Operator):
    """Drop the column, or null the values seen fewer than ``min_count`` times in the data.

    ``min_count`` needs one pass over the column first; it keeps one count per distinct value
    (memory grows with the number of distinct values, not rows).

    Parameters
    ----------
    min_count : int, optional
        Values occurring fewer times in the whole column become null. Without it the whole
        column is dropped from the output.
    """

    name = "suppress"

    def __init__(self, min_count: int | None = None) -> None:
        self.min_count = min_count

    @property
    def drops_column(self) -> bool:  # type: ignore[override]
        return self.min_count is None

    @property
    def needs_pass(self) -> bool:  # type: ignore[override]
        return self.min_count is not None

    def validate(self, column: str) -> None:
        if self.min_count is not None and (not isinstance(self.min_count, int) or self.min_count < 1):
            raise InvalidArgumentError(f"column {column!r}: suppress min_count must be a whole number "
                                       f">= 1, got {self.min_count!r}")

    def prepare(self, batches: Iterable[pa.Array]) -> None:
        counts: dict[Any, int] = {}
        for batch in batches:
            for item in pc.value_counts(batch.drop_null()).to_pylist():
                counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
        rare = [value for value, count in counts.items() if count < (self.min_count or 0)]
        self._rare = rare
        self.suppressed_values = len(rare)

    def apply(self, values: pa.Array, offset: int) -> pa.Array:
        rare = getattr(self, "_rare", None)
        if rare is None:
            raise InvalidArgumentError("suppress(min_count=...) needs prepare() over the column first; "
                                       "use datakiln.privacy.anonymize")
        if not rare:
            return values
        hit = pc.is_in(values, value_set=pa.array(rare, values.type))
        return pc.if_else(hit, pa.scalar(None, values.type), values)

    def params(self) -> dict[str, Any]:
        if self.min_count is None:
            return {"drop": True}
        out: dict[str, Any] = {"min_count": self.min_count}
        if hasattr(self, "suppressed_values"):
            out["values_suppressed"] = self.suppressed_values
        return out


_STREAM = np.uint64(0xD1B54A32D192ED03)


@register
class Noise(Operator):
    """Add seeded Laplace or Gaussian noise of a stated scale to a numeric column.

    Each row's noise is a pure function of (``seed``, column name, row number), so a run is
    reproducible however the data is split into batches or threads.

    Parameters
    ----------
    distribution : {"laplace", "gaussian"}, default "laplace"
        Laplace with scale ``b`` (standard deviation ``b·√2``), or Gaussian with standard
        deviation ``scale``.
    scale : float
        ``b`` of the Laplace distribution, σ of the Gaussian, in the column's units (for a
        Laplace mechanism: sensitivity / ε).
    seed : int, default 0
        Chooses the noise.
    round : bool, optional
        Round to whole numbers and keep the integer type (default: for integer columns).
    clip : [low, high], optional
        Clip the noisy values into this range.
    """

    name = "noise"

    def __init__(self, distribution: str = "laplace", scale: float = 1.0, seed: int = 0,
                 round: bool | None = None, clip: list[float] | None = None) -> None:
        self.distribution, self.scale, self.seed = distribution, scale, seed
        self.round, self.clip = round, clip

    def validate(self, column: str) -> None:
        if self.distribution not in ("laplace", "gaussian"):
            raise InvalidArgumentError(f"column {column!r}: noise distribution must be 'laplace' or "
                                       f"'gaussian', got {self.distribution!r}")
        if not isinstance(self.scale, (int, float)) or isinstance(self.scale, bool) or \
                not np.isfinite(self.scale) or self.scale <= 0:
            raise InvalidArgumentError(f"column {column!r}: noise scale must be a positive number, got "
                                       f"{self.scale!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidArgumentError(f"column {column!r}: noise seed must be a whole number >= 0, got "
                                       f"{self.seed!r}")
        if self.clip is not None and (not isinstance(self.clip, (list, tuple)) or len(self.clip) != 2
                                      or not self.clip[0] < self.clip[1]):
            raise InvalidArgumentError(f"column {column!r}: noise clip must be [low, high] with low < "
                                       f"high, got {self.clip!r}")

    def bind(self, column: str, dtype: pa.DataType, kind: str | None, pii: str | None,
             key: Any) -> None:
        self.column = column
        numeric = pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
        if not numeric:
            raise SchemaError(f"column {column!r}: noise needs numbers, but the column holds {dtype}; "
                              "use generalize or suppress for other columns")
        digest = hashlib.sha256(f"datakiln-noise\0{self.seed}\0{column}".encode()).digest()
        self._salt = np.uint64(int.from_bytes(digest[:8], "little"))
        self._integer = pa.types.is_integer(dtype) if self.round is None else bool(self.round)

    def output_type(self, dtype: pa.DataType) -> pa.DataType:
        if self._integer:
            return dtype if pa.types.is_integer(dtype) else pa.int64()
        return dtype if pa.types.is_floating(dtype) else pa.float64()

    def uniforms(self, rows: np.ndarray, stream: int) -> np.ndarray:
        """Uniform numbers in (0, 1) for row numbers ``rows`` (one independent ``stream`` each)."""
        with np.errstate(over="ignore"):
            word = mix64(mix64(rows.astype(np.uint64) ^ self._salt) + _STREAM * np.uint64(stream + 1))
        return ((word >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53

    def draw(self, offset: int, size: int) -> np.ndarray:
        """The noise of rows ``offset … offset + size - 1``."""
        rows = np.arange(offset, offset + size, dtype=np.uint64)
        u = self.uniforms(rows, 0)
        if self.distribution == "laplace":
            centred = u - 0.5
            return -self.scale * np.sign(centred) * np.log1p(-2.0 * np.abs(centred))
        radius = np.sqrt(-2.0 * np.log(u))
        return self.scale * radius * np.cos(2.0 * np.pi * self.uniforms(rows, 1))

    def apply(self, values: pa.Array, offset: int) -> pa.Array:
        data = np.asarray(pc.cast(values, pa.float64(), safe=False).to_numpy(zero_copy_only=False),
                          dtype=np.float64)
        noisy = data + self.draw(offset, len(data))
        if self.clip is not None:
            noisy = np.clip(noisy, float(self.clip[0]), float(self.clip[1]))
        mask = np.asarray(values.is_null()) if values.null_count else None
        out_type = self.output_type(values.type)
        if self._integer:
            info = np.iinfo(out_type.to_pandas_dtype())
            noisy = np.clip(np.rint(np.nan_to_num(noisy)), info.min, info.max)
        return pa.array(noisy, mask=mask).cast(out_type, safe=False)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"distribution": self.distribution, "scale": self.scale, "seed": self.seed}
        if self.distribution == "laplace":
            out["std"] = float(self.scale) * float(np.sqrt(2.0))
        if self.round is not None:
            out["round"] = self.round
        if self.clip is not None:
            out["clip"] = list(self.clip)
        return out
