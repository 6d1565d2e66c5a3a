"""Model files are data from outside: check every byte count, array and field before use.

A model file's checksums catch damage, not a deliberate edit (anyone can recompute them),
so loading trusts nothing it reads:

- the zip: each member's size is checked before it is inflated (against the manifest's
  declared ``sizes``, a total of :data:`MAX_TOTAL_BYTES` and a compression ratio of
  :data:`MAX_RATIO` beyond the first MiB) and read through a reader that stops at that
  size (:func:`read_member`);
- arrays: the ``.npy`` header is parsed first; only plain numbers (bool, integers, floats)
  whose data length matches their shape are loaded, never pickled objects
  (:func:`load_array`);
- ``model.json``: plain JSON objects with finite numbers (:func:`check_payload`);
- a Gaussian copula's state (:func:`check_copula_state`): roles against the schema, the
  modelled and ``by`` columns, finite non-decreasing quantiles within the column type's
  range (and inside the ``Bound`` constraints), shares in [0, 1] summing to 1, component
  weights summing to 1, correlation matrices symmetric positive semi-definite with a unit
  diagonal, sizes consistent with the column lists, category indices and ``by`` codes
  within the vocabulary.

Each failure is a :class:`~datakiln.errors.ModelFormatError` naming the field. The
copula's newer fields (pooled and withheld categories, NaN/±inf shares, text lengths) are
checked where they are read (:mod:`datakiln.synth._vocab`, :mod:`datakiln.synth._component`).
"""

from __future__ import annotations

import io
import math
import zipfile
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.errors import ModelFormatError

__all__ = ["MAX_GRID", "MAX_RATIO", "MAX_TOTAL_BYTES", "check_copula_state", "check_payload", "check_schema",
           "load_array", "read_member", "settings_problem"]

MAX_TOTAL_BYTES = 2 * 1024**3
"""Most bytes all members of a model file may inflate to together (2 GiB)."""
MAX_RATIO = 200
"""Most a member larger than 1 MiB may inflate per compressed byte: model data (floats,
JSON) compresses a few times; a zip bomb (246 kB → 540 MB) thousands of times."""
_SLACK = 1024 * 1024
_CHUNK = 1024 * 1024


# -- the archive -------------------------------------------------------------------------------------------
def read_member(archive: zipfile.ZipFile, name: str, declared: int | None, so_far: int, where: str) -> bytes:
    """The bytes of member ``name``, refused before inflating when its size is implausible.

    ``declared``: the size the manifest gives (None for the manifest itself); ``so_far``: bytes
    already read from the archive. Raises ``KeyError`` when the member is absent.
    """
    info = archive.getinfo(name)
    size = info.file_size
    if declared is not None and size != declared:
        raise ModelFormatError(f"{where!r}: member {name!r} is {size:,} bytes in the zip directory but the "
                               f"manifest says {declared:,}; the file was altered")
    if so_far + size > MAX_TOTAL_BYTES:
        raise ModelFormatError(f"{where!r}: member {name!r} would inflate the model past "
                               f"{MAX_TOTAL_BYTES:,} bytes; refusing to read it")
    if size > _SLACK and size > MAX_RATIO * max(info.compress_size, 1):
        raise ModelFormatError(f"{where!r}: member {name!r} inflates {info.compress_size:,} bytes to "
                               f"{size:,} (over {MAX_RATIO}x, a zip bomb's mark); refusing to read it")
    chunks, got = [], 0
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(min(_CHUNK, size + 1 - got))
            if not chunk:
                break
            got += len(chunk)
            if got > size:
                raise ModelFormatError(f"{where!r}: member {name!r} inflates past its declared "
                                       f"{size:,} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def load_array(content: bytes, name: str, where: str) -> np.ndarray:
    """A ``.npy`` member, header checked before loading: plain numbers only, length matching shape."""
    from numpy.lib import format as npy

    stream = io.BytesIO(content)
    try:
        version = npy.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = npy.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except (ValueError, SyntaxError, TypeError, EOFError) as exc:
        raise ModelFormatError(f"{where!r}: array {name!r} has no valid .npy header ({exc})") from exc
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biuf":
        raise ModelFormatError(f"{where!r}: array {name!r} has dtype {dtype}; model files hold plain numbers "
                               f"only (never Python objects, which would need pickle)")
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(content) - stream.tell():
        raise ModelFormatError(f"{where!r}: array {name!r} declares shape {shape} ({expected:,} bytes) but "
                               f"holds {len(content) - stream.tell():,} bytes")
    try:
        return np.load(io.BytesIO(content), allow_pickle=False)
    except ValueError as exc:  # pragma: no cover - the header checks above come first
        raise ModelFormatError(f"{where!r}: array {name!r} cannot be read safely ({exc})") from exc


def _nonfinite_path(value: Any, path: str) -> str | None:
    stack = [(value, path)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return at
        if isinstance(item, dict):
            stack.extend((v, f"{at}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))
    return None


def check_payload(payload: Any, where: str) -> None:
    """``model.json``: an object whose ``params`` and ``state`` are objects, with finite numbers."""
    if not isinstance(payload, dict):
        raise ModelFormatError(f"{where!r}: model.json must hold a JSON object, got {type(payload).__name__}")
    for key in ("params", "state"):
        if key in payload and not isinstance(payload[key], dict):
            raise ModelFormatError(f"{where!r}: model.json field {key!r} must be an object, got "
                                   f"{type(payload[key]).__name__}")
    version = payload.get("state_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFormatError(f"{where!r}: model.json field 'state_version' must be a whole number >= 1, "
                               f"got {version!r:.40}")
    bad = _nonfinite_path(payload, "model.json")
    if bad is not None:
        raise ModelFormatError(f"{where!r}: field {bad.removeprefix('model.json.')!r} holds NaN or infinity; "
                               f"datakiln never writes one, so the file was edited")


def check_schema(arrays: dict[str, np.ndarray], where: str) -> None:
    """The ``__schema__`` array (the training schema, Arrow IPC bytes) must be a readable schema."""
    if "__schema__" not in arrays:
        return
    raw = arrays["__schema__"]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFormatError(f"{where!r}: array '__schema__' must be the bytes of an Arrow schema (uint8), "
                               f"got {raw.dtype} {raw.shape}")
    try:
        schema = pa.ipc.read_schema(pa.py_buffer(raw.tobytes()))
        [(field.name, str(field.type)) for field in schema]  # names and types must decode too
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ModelFormatError(f"{where!r}: array '__schema__' is not a readable Arrow schema "
                               f"({exc})") from exc
    if len(set(schema.names)) < len(schema.names):
        raise ModelFormatError(f"{where!r}: array '__schema__' repeats a column name")


# -- the Gaussian copula's state ------------------------------------------------------------------------
ROLES = ("numeric", "categorical", "identifier", "pii", "text")


def _fail(field: str, problem: str) -> ModelFormatError:
    return ModelFormatError(f"state field {field!r} {problem}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _names(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or \
            len(set(value)) < len(value):
        raise _fail(field, f"must be a list of distinct column names, got {value!r:.80}")
    return value


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(field, f"must be an object, got {type(value).__name__}")
    return value


def _value_range(dtype: pa.DataType) -> tuple[float, float]:
    """The ticks a column of ``dtype`` can hold (what sampled numbers are turned back into)."""
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if pa.types.is_integer(dtype):
        info = np.iinfo(dtype.to_pandas_dtype())
        return float(info.min), float(info.max)
    if pa.types.is_temporal(dtype):
        bits = 32 if dtype.bit_width == 32 else 63
        return -(2.0**bits), 2.0**bits - 1
    if pa.types.is_decimal(dtype):
        top = 10.0 ** (dtype.precision - dtype.scale)
        return -top, top
    if pa.types.is_floating(dtype):
        top = float(np.finfo(dtype.to_pandas_dtype()).max)
        return -top, top
    return -np.inf, np.inf


#: the most quantile grid points per column (8 bytes each, per component): a finer grid adds
#: nothing a sample can show, and a typo such as grid=10**9 would allocate terabytes
MAX_GRID = 65_537
_SETTINGS = (("seed", 0, 2**32 - 1), ("grid", 3, MAX_GRID), ("sample_rows", 10, 2**62),
             ("max_components", 1, 1_000_000), ("min_component_rows", 1, 2**62))


def settings_problem(model: Any) -> str | None:
    """What is wrong with a synthesizer's whole-number settings (seed, grid, sizes), or None."""
    for name, low, high in _SETTINGS:
        if not hasattr(model, name):
            continue
        value = getattr(model, name)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not low <= value <= high:
            bounds = f">= {low:,}" if high >= 2**62 else f"in {low:,}..{high:,}"
            return f"{name} must be a whole number {bounds}, got {value!r:.40}"
    return None


def _check_params(model: Any) -> None:
    problem = settings_problem(model)
    if problem is not None:
        raise ModelFormatError(f"model parameter {problem}")
    for name, allowed in (("pii", ("fake", "drop")), ("text", ("fake", "drop", "ngram"))):
        if hasattr(model, name) and getattr(model, name) not in allowed:
            raise ModelFormatError(f"model parameter {name!r} must be one of {allowed}, got "
                                   f"{getattr(model, name)!r:.40}")
    threads = getattr(model, "threads", None)
    if threads is not None and (not _is_int(threads) or not 1 <= threads <= 4096):
        raise ModelFormatError(f"model parameter 'threads' must be None or a whole number in 1..4096, got "
                               f"{threads!r:.40}")


def _check_roles(state: dict[str, Any], schema: pa.Schema) -> dict[str, str]:
    roles = _mapping(state.get("roles"), "roles")
    if set(roles) != set(schema.names) or not all(r in ROLES for r in roles.values()):
        raise _fail("roles", f"must give every column of the schema {schema.names} one of {list(ROLES)}, "
                             f"got {roles!r:.120}")
    for name, role in roles.items():
        dtype = schema.field(name).type
        plain = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
        stringy = pa.types.is_string(plain) or pa.types.is_large_string(plain)
        numeric = (pa.types.is_integer(plain) or pa.types.is_floating(plain) or pa.types.is_decimal(plain)
                   or pa.types.is_temporal(plain))
        fits = {"numeric": numeric, "text": stringy, "pii": stringy,
                "identifier": stringy or pa.types.is_integer(plain),
                "categorical": not (pa.types.is_nested(plain) or pa.types.is_null(plain))}[role]
        if not fits:
            raise _fail(f"roles.{name}", f"is {role!r}, which a column of type {dtype} cannot be")
    return roles


def _check_top(model: Any, state: dict[str, Any], roles: dict[str, str]) -> None:
    if not _is_int(state.get("rows")) or state["rows"] < 1:
        raise _fail("rows", f"must be a whole number >= 1, got {state.get('rows')!r:.40}")
    pii = _mapping(state.get("pii", {}), "pii")
    if not set(pii) <= {n for n, r in roles.items() if r == "pii"} or not all(
            v is None or isinstance(v, str) for v in pii.values()):
        raise _fail("pii", f"must map PII columns to PII kinds, got {pii!r:.80}")
    last = _mapping(state.get("last_id", {}), "last_id")
    for name, value in last.items():
        if roles.get(name) != "identifier" or not _is_int(value) or not -1 <= value < 2**62:
            raise _fail(f"last_id.{name}", f"must be the largest integer id of an identifier column, got "
                                           f"{value!r:.40}")
    text = getattr(model, "text", "fake")
    expected = [n for n, r in roles.items()
                if r in ("numeric", "categorical") or (r == "text" and text == "fake")]
    modelled = _names(state.get("modelled"), "modelled")
    if set(modelled) != set(expected):
        raise _fail("modelled", f"must list the numeric, categorical (and, with text='fake', text) columns "
                                f"{expected}, got {modelled!r:.120}")
    by = _names(state.get("by"), "by")
    if any(roles[n] != "categorical" for n in by if n in roles) or not set(by) <= set(modelled):
        raise _fail("by", f"must list categorical columns, got {by!r:.80}")
    if not isinstance(state.get("constraints", []), list) or not all(
            isinstance(c, str) for c in state.get("constraints", [])):
        raise _fail("constraints", "must be a list of constraint strings")


def _check_vocab(state: dict[str, Any], roles: dict[str, str], schema: pa.Schema) -> dict[str, int]:
    """Number of codes of each categorical column (kept values plus the pool, if any)."""
    vocab = _mapping(state.get("vocab"), "vocab")
    categorical = {n for n, r in roles.items() if r == "categorical"}
    if set(vocab) != categorical:
        raise _fail("vocab", f"must hold the categorical columns {sorted(categorical)}, got {sorted(vocab)}")
    pools = _mapping(state.get("pool", {}), "pool")  # their entries: datakiln.synth._vocab
    for name in ("withheld", "avoid"):
        _mapping(state.get(name, {}), name)
    sizes = {}
    for name, values in vocab.items():
        if not isinstance(values, list):
            raise _fail(f"vocab.{name}", f"must be a list of values, got {type(values).__name__}")
        if any(v is None for v in values) or len(set(map(repr, values))) < len(values):
            raise _fail(f"vocab.{name}", "must list distinct values, none of them null (nulls are "
                                         "modelled by the null shares)")
        dtype = schema.field(name).type
        plain = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
        try:
            if values:
                pa.array(values).cast(plain)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise _fail(f"vocab.{name}", f"holds values that are not {plain} ({exc})") from exc
        pool = pools.get(name, {})
        pooled = isinstance(pool, dict) and isinstance(pool.get("values"), list) and len(pool["values"]) > 0
        sizes[name] = len(values) + int(pooled)
    order = _mapping(state.get("order", {}), "order")
    for name, index in order.items():
        if name not in sizes or not isinstance(index, list) or not all(
                _is_int(i) and 0 <= i < sizes[name] for i in index):
            raise _fail(f"order.{name}", f"must list codes of the categorical column, got {index!r:.80}")
    return sizes


Ranges = dict[str, tuple[float, float]]
Bounds = dict[str, tuple[float, float, bool, bool]]
Gaps = dict[str, tuple[str, bool]]


def _quantile_checks(state: dict[str, Any], schema: pa.Schema,
                     roles: dict[str, str]) -> tuple[Ranges, Bounds, Gaps]:
    """(type range of each numeric column, its Bound constraints, the gap columns → (low column, strict))."""
    from datakiln.synth.constraints import Bound, Inequality, parse_constraints

    try:
        constraints = parse_constraints(state.get("constraints", []), schema.names)
    except (ValueError, TypeError) as exc:
        raise _fail("constraints", f"cannot be read ({exc})") from exc
    bounds: Bounds = {}
    gaps: Gaps = {}
    for constraint in constraints:
        if isinstance(constraint, Inequality):
            gaps[constraint.high] = (constraint.low, constraint.strict)
            names = [constraint.low, constraint.high]
        elif isinstance(constraint, Bound):
            low = -np.inf if constraint.minimum is None else float(constraint.minimum)
            high = np.inf if constraint.maximum is None else float(constraint.maximum)
            bounds[constraint.column] = (low, high, constraint.strict_min, constraint.strict_max)
            names = [constraint.column]
        else:
            names = [constraint.column]
        if any(roles.get(n) != "numeric" for n in names):
            raise _fail("constraints", f"{str(constraint)!r} names columns that are not numeric")
    ranges = {n: _value_range(schema.field(n).type) for n, r in roles.items() if r in ("numeric", "text")}
    return ranges, bounds, gaps


def _check_quantiles(field: str, q: Any, name: str, ranges: Ranges, bounds: Bounds, gaps: Gaps,
                     lows: dict[str, list[float]], all_missing: bool) -> None:
    if not isinstance(q, np.ndarray) or q.ndim != 1 or q.size < 2 or q.dtype.kind not in "iuf":
        raise ModelFormatError(f"array {field!r} (the quantiles of {name!r}) must be a 1-D array of at "
                               f"least 2 numbers, got {getattr(q, 'dtype', type(q).__name__)} "
                               f"{getattr(q, 'shape', '')}")
    x = q.astype(np.float64)
    if not np.isfinite(x).all():
        raise ModelFormatError(f"array {field!r} (the quantiles of {name!r}) holds NaN or infinity")
    if (np.diff(x) < 0).any():
        raise ModelFormatError(f"array {field!r} (the quantiles of {name!r}) must be non-decreasing")
    low, high = ranges[name]
    if all_missing:  # no value in this component (the quantiles are placeholders): never sampled
        bounds, gaps = {}, {}
    if name in gaps:  # the gap between the constraint's two columns, added to the lower one's value
        strict = gaps[name][1]
        if x[0] < 0 or (strict and x[0] <= 0):
            raise ModelFormatError(f"array {field!r} (the gaps of {name!r} above {gaps[name][0]!r}) must be "
                                   f"{'> 0' if strict else '>= 0'} to keep the constraint")
        low, high = low - min(lows.get(gaps[name][0], [0.0])), high - max(lows.get(gaps[name][0], [0.0]))
    if x[0] < low or x[-1] > high:
        raise ModelFormatError(f"array {field!r} (the quantiles of {name!r}, {x[0]:.6g}..{x[-1]:.6g}) "
                               f"leaves the range a column of its type holds ({low:.6g}..{high:.6g})")
    if name in bounds:
        minimum, maximum, strict_min, strict_max = bounds[name]
        if x[0] < minimum or x[-1] > maximum or (strict_min and x[0] <= minimum) or (
                strict_max and x[-1] >= maximum):
            raise ModelFormatError(f"array {field!r} (the quantiles of {name!r}, {x[0]:.6g}..{x[-1]:.6g}) "
                                   f"breaks the model's constraint on {name!r}")


def _check_correlation(field: str, matrix: Any, k: int) -> None:
    if not isinstance(matrix, np.ndarray) or matrix.shape != (k, k) or matrix.dtype.kind != "f":
        raise ModelFormatError(f"array {field!r} must be a {k}x{k} float matrix (one row per column of the "
                               f"component), got {getattr(matrix, 'dtype', '?')} "
                               f"{getattr(matrix, 'shape', '')}")
    if k == 0:
        return
    if not np.isfinite(matrix).all():
        raise ModelFormatError(f"array {field!r} holds NaN or infinity")
    if not np.allclose(matrix, matrix.T, rtol=0, atol=1e-8) or not np.allclose(np.diag(matrix), 1, atol=1e-6):
        raise ModelFormatError(f"array {field!r} must be a correlation matrix: symmetric, ones on the "
                               f"diagonal")
    try:
        np.linalg.cholesky(matrix + 1e-9 * np.eye(k))  # what sampling factorises
        smallest = float(np.linalg.eigvalsh(matrix).min())
    except np.linalg.LinAlgError:
        smallest = -1.0
    if smallest < -1e-9:
        raise ModelFormatError(f"array {field!r} must be positive semi-definite (a correlation matrix); its "
                               f"smallest eigenvalue is {smallest:.3g}")


def _check_component(i: int, part: Any, arrays: dict[str, np.ndarray], context: dict[str, Any]) -> float:
    """Check component ``i``; returns its weight."""
    where = f"components[{i}]"
    part = _mapping(part, where)
    roles, sizes, columns = context["roles"], context["sizes"], context["columns"]
    if part.get("columns") != columns:
        raise _fail(f"{where}.columns", f"must be the modelled columns less the by columns, {columns}, got "
                                        f"{part.get('columns')!r:.120}")
    kinds = {n: "numeric" if roles[n] == "text" else roles[n] for n in columns}
    if part.get("kinds") != kinds:
        raise _fail(f"{where}.kinds", f"must be {kinds}, got {part.get('kinds')!r:.120}")
    fixed = _mapping(part.get("fixed"), f"{where}.fixed")
    if set(fixed) != set(context["by"]) or not all(_is_int(c) and -1 <= c < sizes[n]
                                                   for n, c in fixed.items()):
        raise _fail(f"{where}.fixed", f"must give each by column {context['by']} a code in -1..its "
                                      f"categories, got {fixed!r:.80}")
    weight = part.get("weight")
    if not _is_number(weight) or not 0 <= weight <= 1:
        raise _fail(f"{where}.weight", f"must be a share in [0, 1], got {weight!r:.40}")
    shares = _mapping(part.get("null_share"), f"{where}.null_share")
    if set(shares) != set(columns):
        raise _fail(f"{where}.null_share", f"must hold every column {columns}, got {sorted(shares)}")
    for name, share in shares.items():
        if not _is_number(share) or not 0 <= share <= 1:
            raise _fail(f"{where}.null_share.{name}", f"must be a share in [0, 1], got {share!r:.40}")
    categories = _mapping(part.get("categories"), f"{where}.categories")
    wanted = {n for n in columns if kinds[n] == "categorical"}
    if set(categories) != wanted:
        raise _fail(f"{where}.categories", f"must hold the categorical columns {sorted(wanted)}, got "
                                           f"{sorted(categories)}")
    for name, entry in categories.items():
        field = f"{where}.categories.{name}"
        entry = _mapping(entry, field)
        index, values = entry.get("index"), entry.get("shares")
        if not isinstance(index, list) or not isinstance(values, list) or len(index) != len(values):
            raise _fail(field, "must hold lists 'index' and 'shares' of one length")
        if not all(_is_int(c) and 0 <= c < sizes[name] for c in index) or len(set(index)) < len(index):
            raise _fail(f"{field}.index", f"must list distinct codes below {sizes[name]}, got {index!r:.80}")
        if not all(_is_number(v) and v >= 0 for v in values) or (values and abs(sum(values) - 1) > 1e-6):
            raise _fail(f"{field}.shares", f"must be shares >= 0 adding up to 1, got {values!r:.80}")
        if not index and shares[name] < 1 - 1e-9:
            raise _fail(field, f"has no categories, so the null share must be 1, got {shares[name]!r}")
    for j, name in enumerate(columns):
        if kinds[name] == "numeric":
            key = f"c{i}.q{j}"
            if key not in arrays:
                raise ModelFormatError(f"array {key!r} (the quantiles of {name!r}) is missing")
            _check_quantiles(key, arrays[key], name, context["ranges"], context["bounds"], context["gaps"],
                             context["lows"], shares[name] >= 1)
    _check_correlation(f"c{i}.correlation", arrays.get(f"c{i}.correlation"), len(columns))
    return float(weight)


def check_copula_state(model: Any, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Validate a :class:`~datakiln.synth.GaussianCopula`'s saved state against its schema.

    Raises :class:`~datakiln.errors.ModelFormatError` naming the first bad field.
    """
    schema = model.schema_
    _check_params(model)
    roles = _check_roles(state, schema)
    _check_top(model, state, roles)
    sizes = _check_vocab(state, roles, schema)
    ranges, bounds, gaps = _quantile_checks(state, schema, roles)
    by, modelled = state["by"], state["modelled"]
    combinations = math.prod(sizes[n] + 1 for n in by)
    parts = state.get("components")
    if not isinstance(parts, list) or not 1 <= len(parts) <= combinations:
        raise _fail("components", f"must be a list of 1..{combinations} components (one per combination of "
                                  f"the by columns {by}), got {type(parts).__name__} of "
                                  f"{len(parts) if isinstance(parts, list) else '?'}")
    columns = [n for n in modelled if n not in by]
    lows: dict[str, list[float]] = {}  # each gap's lower column: its smallest and largest quantile
    for i, part in enumerate(parts):
        if isinstance(part, dict) and part.get("columns") == columns:
            for low, _ in gaps.values():
                q = arrays.get(f"c{i}.q{columns.index(low)}") if low in columns else None
                if isinstance(q, np.ndarray) and q.size and q.dtype.kind in "iuf":
                    lows.setdefault(low, []).extend([float(np.min(q)), float(np.max(q))])
    context = {"roles": roles, "sizes": sizes, "columns": columns, "by": by, "ranges": ranges,
               "bounds": bounds, "gaps": gaps, "lows": lows}
    weights = [_check_component(i, part, arrays, context) for i, part in enumerate(parts)]
    if abs(sum(weights) - 1) > 1e-6:
        raise _fail("components[*].weight", f"must add up to 1 (each component's share of the rows), got "
                                            f"{sum(weights):.6g}")
    keys = [tuple(sorted(p["fixed"].items())) for p in parts]
    if len(set(keys)) < len(keys):
        raise _fail("components[*].fixed", "repeats a combination of by values")
