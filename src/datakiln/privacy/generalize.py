"""``generalize``: replace values by a coarser group that many rows share.

One operator, five ways (exactly one per use):

``width`` (and ``origin``)
    Numbers into equal bins: ``37`` with ``width: 10`` → ``"[30, 40)"``.
``edges``
    Numbers into the bins between the given edges: ``[0, 18, 65]`` → ``"< 0"``,
    ``"[0, 18)"``, ``"[18, 65)"``, ``">= 65"``.
``to`` (``day``, ``month`` or ``year``)
    Dates and times truncated to the start of their day, month or year (type kept).
``prefix`` (and ``fill``)
    Text (postcodes, ZIP codes) cut to its first ``prefix`` characters; with ``fill`` the
    rest are replaced by that character so the length stays (``"90210"`` → ``"902**"``).
``hierarchy`` (and ``level``, ``unknown``)
    Categories mapped through a hierarchy file: YAML ``{value: [level 1, level 2, ...]}``
    (or ``{value: parent}``), or CSV rows ``value,level 1,level 2,...``. A value the file
    does not list is an error unless ``unknown`` names its replacement (e.g. ``"*"``).
``ip_prefix``
    IP addresses to their network: ``24`` turns ``192.168.1.77`` into ``192.168.1.0/24``
    (IPv6 addresses use ``ipv6_prefix``, default 48).
"""

from __future__ import annotations

import csv
import ipaddress
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError, SchemaError
from datakiln.privacy.operators import Operator, _per_distinct, _text, register

__all__ = ["Generalize", "load_hierarchy"]

_WAYS = ("width", "edges", "to", "prefix", "hierarchy", "ip_prefix")
_UNITS = {"day": "day", "month": "month", "year": "year"}


def load_hierarchy(path: str | Path) -> dict[str, list[str]]:
    """``{value: [level 1, level 2, ...]}`` from a YAML or CSV hierarchy file."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"hierarchy file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"cannot read hierarchy file {str(path)!r}: {exc}") from None
    if path.suffix.lower() == ".csv":
        rows = [row for row in csv.reader(text.splitlines()) if row and any(cell.strip() for cell in row)]
        return {row[0].strip(): [cell.strip() for cell in row[1:]] for row in rows}
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"hierarchy file {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"hierarchy file {str(path)!r} must map each value to its parent or "
                                   "a list of levels, e.g. 'Paris: [France, Europe]'")
    return {str(k): [str(v) for v in (levels if isinstance(levels, list) else [levels])]
            for k, levels in data.items()}


def _label(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))


@register
class Generalize(Operator):
    """Coarsen a column (see the module docstring for the six ways).

    Parameters
    ----------
    width, origin : float
        Equal-width numeric bins ``[origin + i·width, origin + (i+1)·width)``.
    edges : list of float
        Increasing bin edges.
    to : {"day", "month", "year"}
        Date/time truncation.
    prefix : int
        Characters kept at the start of text; ``fill`` (one character) pads back to length.
    hierarchy : path
        YAML/CSV category hierarchy; ``level`` (default 1) chooses the level, ``unknown`` the
        replacement of unlisted values (default: refuse them).
    ip_prefix, ipv6_prefix : int
        Network prefix lengths for IPv4 (0 … 32) and IPv6 (0 … 128, default 48).
    """

    name = "generalize"

    def __init__(self, width: float | None = None, origin: float = 0.0, edges: list[float] | None = None,
                 to: str | None = None, prefix: int | None = None, fill: str | None = None,
                 hierarchy: str | None = None, level: int = 1, unknown: str | None = None,
                 ip_prefix: int | None = None, ipv6_prefix: int = 48) -> None:
        self.width, self.origin, self.edges, self.to = width, origin, edges, to
        self.prefix, self.fill, self.hierarchy, self.level = prefix, fill, hierarchy, level
        self.unknown, self.ip_prefix, self.ipv6_prefix = unknown, ip_prefix, ipv6_prefix

    @property
    def way(self) -> str:
        given = [w for w in _WAYS if getattr(self, w) is not None]
        return given[0] if len(given) == 1 else ""

    def validate(self, column: str) -> None:
        given = [w for w in _WAYS if getattr(self, w) is not None]
        if len(given) != 1:
            raise InvalidArgumentError(f"column {column!r}: generalize needs exactly one of {list(_WAYS)}, "
                                       f"got {given or 'none'}")
        way = given[0]
        if way == "width" and not (isinstance(self.width, (int, float)) and self.width > 0):
            raise InvalidArgumentError(f"column {column!r}: generalize width must be a positive number, "
                                       f"got {self.width!r}")
        if way == "edges":
            edges = self.edges if isinstance(self.edges, list) else []
            if len(edges) < 1 or any(not isinstance(e, (int, float)) for e in edges) or \
                    any(a >= b for a, b in zip(edges, edges[1:])):
                raise InvalidArgumentError(f"column {column!r}: generalize edges must be increasing "
                                           f"numbers, got {self.edges!r}")
        if way == "to" and self.to not in _UNITS:
            raise InvalidArgumentError(f"column {column!r}: generalize to must be one of {list(_UNITS)}, "
                                       f"got {self.to!r}")
        if way == "prefix" and (not isinstance(self.prefix, int) or self.prefix < 0
                                or (self.fill is not None and len(str(self.fill)) != 1)):
            raise InvalidArgumentError(f"column {column!r}: generalize prefix must be a whole number >= 0 "
                                       f"(fill: one character), got {self.prefix!r} / {self.fill!r}")
        if way == "hierarchy":
            self._map = load_hierarchy(self.hierarchy)  # type: ignore[arg-type]
            if not isinstance(self.level, int) or self.level < 1:
                raise InvalidArgumentError(f"column {column!r}: hierarchy level must be >= 1, got "
                                           f"{self.level!r}")
        v4_ok = isinstance(self.ip_prefix, int) and 0 <= self.ip_prefix <= 32
        v6_ok = isinstance(self.ipv6_prefix, int) and 0 <= self.ipv6_prefix <= 128
        if way == "ip_prefix" and not (v4_ok and v6_ok):
            raise InvalidArgumentError(f"column {column!r}: ip_prefix must be 0 … 32 and ipv6_prefix "
                                       f"0 … 128, got {self.ip_prefix!r} / {self.ipv6_prefix!r}")

    def bind(self, column: str, dtype: pa.DataType, kind: str | None, pii: str | None,
             key: Any) -> None:
        self.column = column
        plain = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
        numeric = pa.types.is_integer(plain) or pa.types.is_floating(plain) or pa.types.is_decimal(plain)
        way = self.way
        if way in ("width", "edges") and not numeric:
            raise SchemaError(f"column {column!r}: generalize {way} needs numbers, but the column holds "
                              f"{dtype}; use prefix or hierarchy for text")
        if way == "to" and not pa.types.is_temporal(plain):
            raise SchemaError(f"column {column!r}: generalize to={self.to!r} needs a date or timestamp "
                              f"column, but it holds {dtype}; read it with a date type (schema override "
                              "or CSV column types) first")

    def output_type(self, dtype: pa.DataType) -> pa.DataType:
        return dtype if self.way == "to" else pa.string()

    def apply(self, values: pa.Array, offset: int) -> pa.Array:
        way = self.way
        if way == "width":
            return self._bins(values)
        if way == "edges":
            return self._edges(values)
        if way == "to":
            return pc.floor_temporal(values, unit=_UNITS[self.to])  # type: ignore[index]
        text = _text(values)
        if way == "prefix":
            head = pc.utf8_slice_codeunits(text, 0, self.prefix)
            if not self.fill:
                return head
            pad = pc.binary_repeat(self.fill, pc.max_element_wise(
                pc.subtract(pc.utf8_length(text), self.prefix), 0))
            return pc.binary_join_element_wise(head, pad, "")
        if way == "hierarchy":
            return _per_distinct(text, self._lift)
        return _per_distinct(text, self._network)

    def _numbers(self, values: pa.Array) -> np.ndarray:
        return np.asarray(pc.cast(values, pa.float64(), safe=False).to_numpy(zero_copy_only=False),
                          dtype=np.float64)

    def _bins(self, values: pa.Array) -> pa.Array:
        x = self._numbers(values)
        width, origin = float(self.width), float(self.origin)  # type: ignore[arg-type]
        missing = np.isnan(x)  # NaN is a missing value; ±inf keep their own label
        index = np.floor((np.where(missing, origin, x) - origin) / width)
        bins, position = np.unique(index, return_inverse=True)
        names = [f"[{_label(origin + i * width)}, {_label(origin + (i + 1) * width)})"
                 if np.isfinite(i) else ("inf" if i > 0 else "-inf") for i in bins.tolist()]
        return pc.take(pa.array(names, pa.string()), pa.array(position.reshape(-1), mask=missing))

    def _edges(self, values: pa.Array) -> pa.Array:
        edges = [float(e) for e in self.edges]  # type: ignore[union-attr]
        inner = [f"[{_label(a)}, {_label(b)})" for a, b in zip(edges, edges[1:])]
        names = [f"< {_label(edges[0])}", *inner, f">= {_label(edges[-1])}"]
        x = self._numbers(values)
        index = np.searchsorted(np.asarray(edges), x, side="right")
        return pc.take(pa.array(names, pa.string()), pa.array(index, mask=np.isnan(x)))

    def _lift(self, value: str) -> str:
        levels = self._map.get(value)
        if levels is None or not levels:
            if self.unknown is None:
                raise SchemaError(f"column {self.column!r}: the value {value!r} is not in the hierarchy "
                                  f"file {self.hierarchy!r}; add it there or set unknown: '*' to replace "
                                  "unlisted values")
            return str(self.unknown)
        return levels[min(self.level, len(levels)) - 1]

    def _network(self, value: str) -> str:
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            raise SchemaError(f"column {self.column!r}: {value!r} is not an IP address; generalize "
                              "ip_prefix needs IPv4/IPv6 addresses (use redact or mask for others)") from None
        bits = self.ip_prefix if address.version == 4 else self.ipv6_prefix
        return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))

    def params(self) -> dict[str, Any]:
        way = self.way
        out: dict[str, Any] = {way: getattr(self, way)} if way else {}
        if way == "width" and self.origin:
            out["origin"] = self.origin
        if way == "prefix" and self.fill:
            out["fill"] = self.fill
        if way == "hierarchy":
            out.update(level=self.level, unknown=self.unknown)
        if way == "ip_prefix":
            out["ipv6_prefix"] = self.ipv6_prefix
        return out
