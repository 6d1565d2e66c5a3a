"""Arrow ↔ SQL types for :mod:`datakiln.io.sql`.

A table's column types come from reflection (:func:`arrow_from_sqlalchemy`); a query's from
its first rows, and from the cursor description for columns whose first rows are all NULL
(:func:`arrow_from_values`). Zoned timestamps: PostgreSQL's ``timestamptz`` keeps the
instant; MySQL/MariaDB and SQLite have no zoned type, so ``write_sql`` stores UTC wall time
and records the zone (``datakiln:tz=Europe/Zurich``) in the column comment, or on SQLite in
the declared column type (:class:`ZonedSqliteDateTime`), and a table read gives back
``timestamp[us, tz=<zone>]``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from datakiln.errors import SchemaError
from datakiln.io._sqlconn import sqlalchemy, zone_marker

__all__ = ["arrow_from_sqlalchemy", "arrow_from_values", "column_array", "sqlalchemy_from_arrow",
           "zoned_sqlite_type"]

# PostgreSQL type OIDs and MySQL field type codes for columns whose sampled values are all NULL
_PG_TYPES = {16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 700: pa.float32(),
             701: pa.float64(), 1082: pa.date32(), 1114: pa.timestamp("us"),
             1184: pa.timestamp("us", tz="UTC"), 1083: pa.time64("us"), 17: pa.binary()}
_MYSQL_TYPES = {1: pa.int8(), 2: pa.int16(), 3: pa.int32(), 8: pa.int64(), 9: pa.int32(),
                4: pa.float32(), 5: pa.float64(), 10: pa.date32(), 7: pa.timestamp("us"),
                12: pa.timestamp("us"), 11: pa.duration("us"), 13: pa.int16()}


def arrow_from_sqlalchemy(sa_type: Any) -> pa.DataType:
    sa = sqlalchemy()
    checks = [
        (sa.Boolean, pa.bool_()), (sa.SmallInteger, pa.int16()), (sa.BigInteger, pa.int64()),
        (sa.Integer, pa.int64()), (sa.Date, pa.date32()), (sa.Time, pa.time64("us")),
        (sa.Interval, pa.duration("us")), (sa.LargeBinary, pa.binary()), (sa.String, pa.string()),
        (sa.JSON, pa.string()), (sa.Uuid, pa.string()),
    ]
    if isinstance(sa_type, sa.DateTime):
        return pa.timestamp("us", tz="UTC") if sa_type.timezone else pa.timestamp("us")
    if isinstance(sa_type, sa.Numeric) and not isinstance(sa_type, sa.Float):
        precision, scale = sa_type.precision, sa_type.scale
        if precision and precision <= 38:
            return pa.decimal128(precision, scale or 0)
        return pa.decimal128(38, 10)
    if isinstance(sa_type, sa.Float):
        return pa.float64()
    for cls, arrow in checks:
        if isinstance(sa_type, cls):
            return arrow
    return pa.string()


def arrow_from_values(values: list[Any], description: Sequence[Any], dialect: str) -> pa.DataType:
    present = [v for v in values if v is not None]
    if not present:
        code = description[1] if len(description) > 1 else None
        table = _PG_TYPES if dialect == "postgresql" else _MYSQL_TYPES if dialect == "mysql" else {}
        return table.get(code, pa.string()) if isinstance(code, int) else pa.string()
    first = present[0]
    if isinstance(first, bool):
        return pa.bool_()
    if isinstance(first, int):
        return pa.int64()
    if isinstance(first, float):
        return pa.float64()
    if isinstance(first, decimal.Decimal):
        if not all(v.is_finite() for v in present if isinstance(v, decimal.Decimal)):
            return pa.float64()  # NaN / Infinity (PostgreSQL numeric) have no decimal128 form
        precision, scale = (description[4], description[5]) if len(description) > 5 else (None, None)
        if precision and scale is not None and 0 < precision <= 38:
            return pa.decimal128(precision, scale)
        return pa.decimal128(38, max(max(-v.as_tuple().exponent, 0) for v in present))
    if isinstance(first, dt.datetime):
        return pa.timestamp("us", tz="UTC") if first.tzinfo else pa.timestamp("us")
    if isinstance(first, dt.date):
        return pa.date32()
    if isinstance(first, dt.time):
        return pa.time64("us")
    if isinstance(first, dt.timedelta):
        return pa.duration("us")
    if isinstance(first, (bytes, bytearray, memoryview)):
        return pa.binary()
    return pa.string()


def column_array(values: Sequence[Any], dtype: pa.DataType, column: str) -> pa.Array:
    if pa.types.is_string(dtype):
        values = [v if v is None or isinstance(v, str) else
                  json.dumps(v) if isinstance(v, (dict, list)) else str(v) for v in values]
    elif pa.types.is_binary(dtype):
        values = [bytes(v) if isinstance(v, memoryview) else v for v in values]
    elif pa.types.is_floating(dtype):
        values = [float(v) if isinstance(v, decimal.Decimal) else v for v in values]
    elif pa.types.is_timestamp(dtype) and dtype.tz is None:
        values = [v.replace(tzinfo=None) if isinstance(v, dt.datetime) and v.tzinfo else v
                  for v in values]
    elif pa.types.is_timestamp(dtype):
        values = [v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo
                  is None else v for v in values]
    try:
        return pa.array(values, type=dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise SchemaError(f"SQL column {column!r}: values do not fit {dtype} ({exc}); the type "
                          "was taken from the first rows") from exc


def sqlalchemy_from_arrow(dtype: pa.DataType) -> Any:
    sa = sqlalchemy()
    from sqlalchemy.dialects import mysql
    if pa.types.is_boolean(dtype):
        return sa.Boolean()
    if pa.types.is_integer(dtype):
        return sa.BigInteger() if dtype.bit_width > 32 or pa.types.is_unsigned_integer(dtype) \
            else sa.Integer() if dtype.bit_width == 32 else sa.SmallInteger()
    if pa.types.is_floating(dtype):
        return sa.Double()
    if pa.types.is_decimal(dtype):
        return sa.Numeric(dtype.precision, dtype.scale)
    if pa.types.is_timestamp(dtype):  # MySQL keeps microseconds only when asked (fsp=6)
        return sa.DateTime(timezone=dtype.tz is not None).with_variant(
            mysql.DATETIME(fsp=6), "mysql", "mariadb")
    if pa.types.is_date(dtype):
        return sa.Date()
    if pa.types.is_time(dtype):
        return sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb")
    if pa.types.is_duration(dtype):
        return sa.Interval()
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return sa.LargeBinary()
    if pa.types.is_dictionary(dtype):
        return sqlalchemy_from_arrow(dtype.value_type)
    return sa.Text()


def zoned_sqlite_type(zone: str) -> Any:
    """SQLite's DATETIME, declared as ``DATETIME "datakiln:tz=<zone>"`` so the zone is kept in
    the table's definition (SQLite has no column comments; the affinity stays the same)."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.ext.compiler import compiles

    class ZonedSqliteDateTime(sqlite.DATETIME):
        cache_ok = True

    @compiles(ZonedSqliteDateTime, "sqlite")
    def _declare(element: Any, compiler: Any, **kw: Any) -> str:
        return 'DATETIME "' + zone_marker(zone).replace('"', "") + '"'

    return ZonedSqliteDateTime()
