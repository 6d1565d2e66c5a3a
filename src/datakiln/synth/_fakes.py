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
