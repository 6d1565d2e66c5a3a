"""Byte sizes: parse ``"1GB"``-style memory budgets and format byte counts for people."""

from __future__ import annotations

import re

from datakiln.errors import InvalidArgumentError

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "t": 1000**4,
          "tb": 1000**4, "tib": 1024**4}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_bytes(value: int | float | str | None, *, name: str = "memory_budget") -> int | None:
    """Turn ``"1GB"``, ``"512MiB"``, ``2e9`` or ``None`` into a whole number of bytes.

    Decimal units (kB, MB, GB, TB) are powers of 1000, binary ones (KiB, MiB, GiB) of 1024.
    ``None`` means no limit and is returned as is.

    >>> parse_bytes("1.5GB")
    1500000000
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be a size such as '1GB', got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = _SIZE.match(str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise InvalidArgumentError(
                f"{name} must be a size such as '512MB', '1GB' or '2GiB', got {value!r}"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise InvalidArgumentError(f"{name} must be positive, got {value!r}")
    return size


def format_bytes(size: float) -> str:
    """Format a byte count with a decimal unit: ``format_bytes(1_500_000) == '1.5 MB'``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
