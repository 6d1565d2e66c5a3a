"""``anonymize(ds, config, key=...)``: apply per-column operators, streaming, with a report.

Without a configuration every PII column gets a safe default (the column kinds come from
:mod:`datakiln.schema`):

==========================  ===============================================================
e-mail, phone               format-preserving pseudonym (collision-free, joins survive)
identifier                  format-preserving pseudonym (integers keep their digit count)
name, other PII             HMAC-SHA256 pseudonym
address                     redact
credit card                 mask all but the last 4 digits, separators kept
IP address                  generalise to the /24 network (IPv6: /48)
free text                   scrub e-mails, phones, Luhn-valid cards and IPs inside it
==========================  ===============================================================

A ``privacy.yaml`` names operators per column (a list chains them)::

    namespace: customers        # pseudonyms join only within one namespace
    key_version: 1              # bump to rotate every pseudonym
    defaults: true              # PII columns not listed still get the defaults above
    columns:
      email: {op: pseudonymize, format: email}
      card: {op: mask, keep_last: 4, keep_format: true}
      age: {op: generalize, width: 10}
      zip: {op: generalize, prefix: 3, fill: "*"}
      city: {op: generalize, hierarchy: cities.yaml, level: 1}
      income: {op: noise, distribution: laplace, scale: 500, seed: 7}
      rare_job: {op: suppress, min_count: 5}
      ssn: suppress             # drop the column
      notes: {op: scrub, replace: pseudonym}
      nickname: keep            # a detected PII column left as it is, on purpose

The returned dataset is lazy: operators run batch by batch while it is written or iterated.
The report's row counts describe the latest full pass over it (like ``ds.stats``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.dataset.dataset import Dataset, as_dataset
from datakiln.errors import InvalidArgumentError, SchemaError
from datakiln.io.base import ReadTask, SizeEstimate, Source, apply_pushdown
from datakiln.privacy.operators import Operator, as_array, make_operator
from datakiln.schema import refuse_nested

__all__ = ["AnonymizationReport", "Change", "anonymize", "default_operator", "load_config"]

_DEFAULTS: dict[tuple[str, str | None], dict[str, Any]] = {
    ("pii", "email"): {"op": "pseudonymize", "format": "email"},
    ("pii", "phone"): {"op": "pseudonymize", "format": "phone"},
    ("pii", "name"): {"op": "pseudonymize", "format": "hmac"},
    ("pii", "address"): {"op": "redact"},
    ("pii", "credit_card"): {"op": "mask", "keep_last": 4, "keep_format": True},
    ("pii", "ip"): {"op": "generalize", "ip_prefix": 24},
    ("pii", None): {"op": "pseudonymize", "format": "hmac"},
    ("identifier", None): {"op": "pseudonymize", "format": "auto"},
    ("text", None): {"op": "scrub"},
}
_CONFIG_KEYS = {"namespace", "key_version", "defaults", "columns"}


def default_operator(kind: str, pii: str | None) -> dict[str, Any] | None:
    """The safe default operator spec for a column kind (and PII type), or None to keep it."""
    if kind == "pii":
        return dict(_DEFAULTS.get(("pii", pii), _DEFAULTS[("pii", None)]))
    spec = _DEFAULTS.get((kind, None))
    return dict(spec) if spec else None


def load_config(config: Mapping[str, Any] | str | os.PathLike[str] | None) -> dict[str, Any]:
    """A privacy configuration as a dict, from a mapping or a YAML/JSON file.

    Hierarchy files named by a configuration file are found relative to that file's folder.
    """
    if config is None:
        return {"columns": {}}
    where = "the privacy configuration"
    config_path = None
    if isinstance(config, (str, os.PathLike)):
        path = config_path = Path(config)
        where = f"the privacy configuration {str(path)!r}"
        if not path.is_file():
            raise InvalidArgumentError(f"{where} does not exist")
        import yaml

        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(config, Mapping):
        raise InvalidArgumentError(f"{where} must be a mapping with 'columns:', got {type(config).__name__}")
    unknown = sorted(set(map(str, config)) - _CONFIG_KEYS)
    if unknown:
        raise InvalidArgumentError(f"{where} has unknown key(s) {unknown}; the keys are "
                                   f"{sorted(_CONFIG_KEYS)}")
    columns = config.get("columns") or {}
    if not isinstance(columns, Mapping):
        raise InvalidArgumentError(f"{where}: 'columns' must map column names to operators")
    base = str(Path(config_path).parent) if config_path else ""
    return {**config, "columns": {str(k): v for k, v in columns.items()}, "_base": base}


@dataclass
class Change:
    """One operator applied to one column, and the rows it changed in the latest pass."""

    column: str
    operator: str
    params: dict[str, Any]
    reason: str  # "config" or "default (kind ...)"
    rows_changed: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        out = {"column": self.column, "operator": self.operator, "params": self.params,
               "reason": self.reason, "rows_changed": self.rows_changed}
        if self.counts:
            out["found"] = dict(self.counts)
        return out


@dataclass
class _Pass:
    """Counts of one pass over the anonymised dataset, adopted by the report when complete."""

    changed: list[int]
    found: list[Counter[str]]
    rows: int = 0
    yielded: int = 0
    done: int = 0
    total: int | None = None


@dataclass
class AnonymizationReport:
    """What :func:`anonymize` changes: one :class:`Change` per column and operator.

    ``rows`` and each ``rows_changed`` (and ``found`` for ``scrub``) describe the latest
    complete pass over the returned dataset (zero before the first); a partial read such as
    ``head()`` leaves them as they were. ``key_id`` names the key used, never the key itself.
    """

    changes: list[Change]
    unchanged: list[str]
    key_id: str | None = None
    rows: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _operators: list[Operator] = field(default_factory=list, repr=False)

    def _new_pass(self) -> _Pass:
        return _Pass(changed=[0] * len(self.changes), found=[Counter() for _ in self.changes])

    def _finish_task(self, tally: _Pass, rows: int, changed: Sequence[int],
                     found: Sequence[Mapping[str, int]]) -> None:
        with self._lock:
            tally.rows += rows
            tally.done += 1
            for index, (count, kinds) in enumerate(zip(changed, found)):
                tally.changed[index] += count
                tally.found[index].update(kinds)
            self._maybe_adopt(tally)

    def _finish_tasks(self, tally: _Pass) -> None:
        with self._lock:
            tally.total = tally.yielded
            self._maybe_adopt(tally)

    def _maybe_adopt(self, tally: _Pass) -> None:
        """Take a pass's counts once every one of its tasks has run (a partial pass — a
        ``head()`` — never replaces the counts of a full one)."""
        if tally.total is None or tally.done != tally.total:
            return
        self.rows = tally.rows
        for change, count, kinds in zip(self.changes, tally.changed, tally.found):
            change.rows_changed = count
            change.counts = {kind: kinds[kind] for kind in sorted(kinds)}

    @property
    def dropped(self) -> list[str]:
        """Columns removed from the output."""
        return [c.column for c in self.changes if c.operator == "suppress" and c.params.get("drop")]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        for change, operator in zip(self.changes, self._operators):
            change.params = operator.params()
        return {"rows": self.rows, "key_id": self.key_id,
                "changes": [c.to_dict() for c in self.changes], "dropped": self.dropped,
                "unchanged": list(self.unchanged)}

    def to_json(self) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str)

    def summary_rows(self) -> list[tuple[str, str, str, str]]:
        """``(column, operator, parameters, rows changed)`` per change, as text."""
        def text(params: dict[str, Any]) -> str:
            return ", ".join(f"{k}={'/'.join(map(str, v)) if isinstance(v, list) else v}"
                             for k, v in params.items() if k != "key_id")

        data = self.to_dict()["changes"]
        return [(c["column"], c["operator"], text(c["params"]),
                 "dropped" if c["params"].get("drop") else f"{c['rows_changed']:,}") for c in data]


def _changed(before: pa.Array, after: pa.Array) -> int:
    """Rows whose value differs (a null that stays null is unchanged)."""
    if len(before) == 0:
        return 0
    both_null = pc.and_(before.is_null(), after.is_null())
    try:
        same_type = before if before.type == after.type else before.cast(after.type)
        equal = pc.fill_null(pc.equal(same_type, after), False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        equal = pa.array([False] * len(before))
    return len(before) - pc.sum(pc.or_(equal, both_null)).as_py()


@dataclass
class _Step:
    column: str
    operators: list[Operator]
    first_change: int  # index of its first Change in the report


class _AnonymizedSource(Source):
    """The input dataset's batches with the operators applied (one pass = one report pass)."""

    tasks_are_independent = False

    def __init__(self, inner: Dataset, steps: list[_Step], report: AnonymizationReport,
                 plan_digest: str) -> None:
        super().__init__()
        self.inner, self.steps, self.report = inner, steps, report
        self.name = f"anonymized {inner.source.name}"
        self._digest = plan_digest
        self._schema = self._run(inner.arrow_schema.empty_table(), 0, None).schema

    @property
    def files(self) -> Any:  # the inputs stay protected from being overwritten by the output
        return getattr(self.inner.source, "files", None)

    @property
    def url(self) -> Any:
        return getattr(self.inner.source, "url", None)

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def fingerprint(self) -> str:
        return f"anonymized:{self.inner.fingerprint}:{self._digest}"

    def estimate_size(self) -> SizeEstimate:
        if self.inner._ops:
            return SizeEstimate(None, None)
        return self.inner.source.estimate_size()

    def count_rows(self) -> int:
        return self.inner.count()

    def task_bytes(self) -> int:
        return 2 * self.inner.source.task_bytes()

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        tally = self.report._new_pass()
        offset = 0
        tables = self.inner._tables()
        try:
            for table in tables:
                yield functools.partial(self._task, table, offset, columns, filter, tally)
                tally.yielded += 1
                offset += table.num_rows
        finally:
            tables.close()  # type: ignore[attr-defined]
        self.report._finish_tasks(tally)

    def _task(self, table: pa.Table, offset: int, columns: Sequence[str] | None,
              filter: pc.Expression | None, tally: _Pass) -> pa.Table:
        return apply_pushdown(self._run(table, offset, tally), columns, filter)

    def _run(self, table: pa.Table, offset: int, tally: _Pass | None) -> pa.Table:
        changed = [0] * len(self.report.changes)
        found: list[dict[str, int]] = [{} for _ in self.report.changes]
        drop = []
        for step in self.steps:
            index = table.schema.get_field_index(step.column)
            values = as_array(table.column(index))
            if pa.types.is_dictionary(values.type):
                values = values.cast(values.type.value_type)
            for number, operator in enumerate(step.operators):
                if operator.drops_column:
                    drop.append(step.column)
                    changed[step.first_change + number] = len(values)
                    break
                after, found[step.first_change + number] = operator.apply_counted(values, offset)
                expected = operator.output_type(values.type)
                after = as_array(after)
                if after.type != expected:
                    after = after.cast(expected)
                if tally is not None:
                    changed[step.first_change + number] = _changed(values, after)
                values = after
            table = table.set_column(index, pa.field(step.column, values.type), values)
        if tally is not None:
            self.report._finish_task(tally, table.num_rows, changed, found)
        return table.drop_columns(drop) if drop else table


def _operators_for(spec: Any, column: str, config: Mapping[str, Any]) -> list[Operator]:
    specs = spec if isinstance(spec, list) else [spec]
    if not specs:
        raise InvalidArgumentError(f"column {column!r}: an empty operator list; write 'keep' to leave "
                                   "the column as it is")
    operators = []
    for one in specs:
        one = {"op": one} if isinstance(one, str) else dict(one) if isinstance(one, Mapping) else one
        if isinstance(one, dict) and one.get("op") in ("pseudonymize", "scrub"):
            one.setdefault("namespace", config.get("namespace", "default"))
            one.setdefault("version", config.get("key_version", 1))
        if isinstance(one, dict) and isinstance(one.get("hierarchy"), str) and config.get("_base"):
            one["hierarchy"] = os.path.join(config["_base"], os.path.expanduser(one["hierarchy"]))
        operators.append(make_operator(one, column))
    if any(op.drops_column for op in operators[:-1]):
        raise InvalidArgumentError(f"column {column!r}: 'suppress' without min_count drops the column, so "
                                   "it can only be the last operator of a chain")
    return operators


def anonymize(ds: Any, config: Mapping[str, Any] | str | os.PathLike[str] | None = None, *,
              key: Any = None, key_file: str | os.PathLike[str] | None = None,
              key_env: str | None = None) -> tuple[Dataset, AnonymizationReport]:
    """Anonymise a dataset column by column; returns ``(dataset, report)``.

    Parameters
    ----------
    ds : Dataset, pyarrow.Table or pandas.DataFrame
        The data. Column kinds (PII, identifier, text) come from ``ds.schema``.
    config : dict or path, optional
        The per-column operators (see the module docstring); ``None`` gives every PII,
        identifier and text column its safe default.
    key, key_file, key_env :
        The secret for pseudonyms: a :class:`~datakiln.privacy.keys.Key`, bytes or key file
        path; a key file; or the name of an environment variable holding it. Needed only when
        an operator pseudonymises; there is no default key.

    Returns
    -------
    (Dataset, AnonymizationReport)
        A lazy dataset (operators run while it is written or iterated) and the report, whose
        counts describe the latest complete pass over that dataset.

    >>> anonymous, report = anonymize(ds, key_file="secret.key")   # doctest: +SKIP
    >>> anonymous.write("anonymous.parquet"); print(report.to_json())  # doctest: +SKIP
    """
    ds = as_dataset(ds, what="anonymize")
    refuse_nested(ds.arrow_schema, "anonymisation")
    settings = load_config(config)
    schema = ds.schema
    listed = settings["columns"]
    missing = sorted(set(listed) - set(schema.names))
    if missing:
        raise SchemaError(f"the privacy configuration names columns that do not exist: {missing}; "
                          f"the columns are {schema.names}")
    plan: list[tuple[str, list[Operator], str]] = []
    for column in schema:
        if column.name in listed:
            plan.append((column.name, _operators_for(listed[column.name], column.name, settings), "config"))
        elif settings.get("defaults", True):
            spec = default_operator(column.kind, column.pii)
            if spec is not None:
                reason = f"default for {column.kind}" + (f" ({column.pii})" if column.pii else "")
                plan.append((column.name, _operators_for(spec, column.name, settings), reason))
    resolved = None
    given = any(k is not None for k in (key, key_file, key_env))  # a key given is checked even if unused
    if given or any(op.needs_key for _, ops, _ in plan for op in ops):
        from datakiln.privacy.keys import resolve_key

        needing = [name for name, ops, _ in plan if any(op.needs_key for op in ops)]
        resolved = resolve_key(key, key_file=key_file, key_env=key_env,
                               what=f"pseudonymising the column(s) {needing}")
    return _build(ds, plan, resolved, schema)


def _build(ds: Dataset, plan: list[tuple[str, list[Operator], str]], key: Any,
           schema: Any) -> tuple[Dataset, AnonymizationReport]:
    steps, changes, operators = [], [], []
    for name, ops, reason in plan:
        dtype = ds.arrow_schema.field(name).type
        if pa.types.is_dictionary(dtype):
            dtype = dtype.value_type
        steps.append(_Step(name, ops, len(changes)))
        for operator in ops:
            operator.bind(name, dtype, schema[name].kind, schema[name].pii, key)
            if operator.needs_pass:
                _prepare(ds, name, steps[-1], operator)
            if not operator.drops_column:
                dtype = operator.output_type(dtype)
            changes.append(Change(name, operator.name, operator.params(), reason))
            operators.append(operator)
    planned = {s.column for s in steps}
    report = AnonymizationReport(changes, [n for n in schema.names if n not in planned],
                                 key_id=getattr(key, "key_id", None), _operators=operators)
    digest = hashlib.sha256(json.dumps([[c.column, c.operator, c.params] for c in changes],
                                       sort_keys=True, default=str).encode()).hexdigest()
    source = _AnonymizedSource(ds, steps, report, digest)
    return Dataset(source, memory_budget=ds._memory_budget, num_threads=ds._num_threads), report


def _prepare(ds: Dataset, column: str, step: _Step, operator: Operator) -> None:
    """Feed ``operator`` every batch of ``column`` as the operators before it leave it."""
    before = step.operators[:step.operators.index(operator)]

    def batches() -> Iterator[pa.Array]:
        offset = 0
        for table in ds.select([column])._tables():
            values = as_array(table.column(0))
            if pa.types.is_dictionary(values.type):
                values = values.cast(values.type.value_type)
            for earlier in before:
                values = as_array(earlier.apply(values, offset))
            offset += table.num_rows
            yield values

    operator.prepare(batches())
