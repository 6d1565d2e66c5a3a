"""Access policies: which columns a role may read, which it sees masked, and which rows.

A policy is a YAML file::

    version: 1
    key_file: pseudonym.key          # or key_env: NAME; needed only to pseudonymise
    namespace: customers             # pseudonyms join only within one namespace
    audit:                           # required: every read under the policy is logged
      log: audit.jsonl
      checkpoint: audit.head         # the chain's head; keep a copy elsewhere
      key_file: audit.key            # or key_env: NAME
    roles:
      analyst:
        columns: [age, education, income]        # readable as they are
        masked:                                   # readable only through operators
          email: {op: mask, keep_last: 4}
          customer_id: {op: pseudonymize, format: identifier}
        row_filter: "country == 'US' and age >= 18"
      steward:
        columns: "*"                              # every column ...
        exclude: [ssn]                            # ... but these

Relative paths resolve against the policy file's folder. ``datakiln.read(path,
policy="policy.yaml", role="analyst")`` enforces it **at read time**:

- *Projection*: the reader is asked only for the role's columns (and those its row filter
  needs), so a Parquet reader never decodes another column. Text formats (CSV, JSON) must
  parse a whole line to find the next one; the columns are dropped right after parsing and
  never leave the reader. Asking for any other column (``select``, a loader's ``columns=``)
  raises :class:`~datakiln.errors.AccessDeniedError` naming it, whether or not it exists.
- *Row filter*: the role's filter (:mod:`datakiln.privacy.rowfilter`, parsed, never
  evaluated as code) is pushed into the reader. A filter the caller adds applies to what the
  role sees (masked values), never to the raw data.
- *Masking*: masked columns go through the anonymisation operators of
  :mod:`datakiln.privacy.operators` (``mask``, ``redact``, ``pseudonymize``, ``generalize``,
  ``scrub``, ``keep``) batch by batch. Operators that need a pass over the data or add random
  noise per read (``suppress``, ``noise``) are refused: repeated reads would average noise away.
- *Audit*: every read appends a ``read`` entry when it starts and a ``read-end`` entry (rows
  handed on, and whether it completed) to the policy's audit log
  (:mod:`datakiln.privacy.audit`); a read cannot start unless its entry was written.

The reader reaches this module through the hook registry of
:mod:`datakiln.dataset.reading` (this module registers :func:`apply_policy` for the
keyword ``policy``), so no layer below ``privacy/`` imports it.

A policy guards what a pipeline hands to a role (services, the CLI, notebooks run as that
role); it is not an operating-system permission: code that can open the file itself can
read it without the policy.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from datakiln.dataset.dataset import Dataset
from datakiln.dataset.reading import register_read_hook
from datakiln.errors import AccessDeniedError, DatakilnError, InvalidArgumentError, SchemaError
from datakiln.io._secrets import redact_text
from datakiln.privacy.operators import Operator, make_operator
from datakiln.privacy.rowfilter import RowFilter, parse_filter

__all__ = ["Policy", "RolePolicy", "apply_policy", "load_policy"]

_POLICY_KEYS = {"version", "roles", "key_file", "key_env", "namespace", "key_version", "audit"}
_ROLE_KEYS = {"columns", "exclude", "masked", "row_filter", "description"}
_AUDIT_KEYS = {"log", "checkpoint", "key_file", "key_env"}
_REFUSED_OPERATORS = {"noise": "adds fresh random noise per read, which averaging repeated reads "
                               "removes; anonymise once with `kiln anonymize` instead",
                      "suppress": "needs a pass over the whole column (or drops it: leave the "
                                  "column out of the role's columns instead)"}


# -- YAML with line numbers -----------------------------------------------------------------------
class _Lines(dict):  # type: ignore[type-arg]
    """A mapping from the YAML file that remembers the line of each key."""

    lines: dict[Any, int]


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _Lines:
    loader.flatten_mapping(node)
    out = _Lines()
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in out.lines:
            raise InvalidArgumentError(f"line {line}: {key!r} appears twice in the mapping (first on "
                                       f"line {out.lines[key]}); a policy lists each key once")
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = line
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _line(mapping: Any, key: Any) -> int | None:
    return getattr(mapping, "lines", {}).get(key)


# -- the policy -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RolePolicy:
    """What one role may read (see the module docstring).

    ``columns`` is ``None`` for ``"*"`` (every column but ``exclude``); ``masked`` maps a
    column to its operator specs; ``policy`` names the file and ``lines`` the line of each
    column, of ``row_filter`` and of the role itself (key ``""``), for messages.
    """

    name: str
    columns: tuple[str, ...] | None
    exclude: tuple[str, ...]
    masked: dict[str, list[Any]]
    row_filter: RowFilter | None
    policy: str = "<policy>"
    lines: dict[str, int] = field(default_factory=dict)

    def visible(self, names: Sequence[str]) -> list[str]:
        """The columns of ``names`` this role reads (plain or masked), in data order."""
        allowed = set(self.masked) | (set(names) if self.columns is None else set(self.columns))
        return [n for n in names if n in allowed and n not in self.exclude]

    def where(self, item: str = "") -> str:
        """``"policy.yaml line 12, role 'analyst'"``: the line of ``item`` (a column,
        ``"row_filter"``) or of the role, for messages."""
        return _where(self.policy, self.lines.get(item) or self.lines.get(""), self.name)


def _where(policy: str, line: int | None, role: str) -> str:
    return f"{policy}{f' line {line}' if line else ''}, role {role!r}"


@dataclass(frozen=True)
class Policy:
    """A loaded access policy: roles, the pseudonym key, and the audit log settings."""

    roles: dict[str, RolePolicy]
    audit_log: Path
    audit_checkpoint: Path | None
    audit_key: dict[str, Any]
    key: dict[str, Any]
    namespace: str = "default"
    key_version: int = 1
    name: str = "<policy>"
    digest: str = ""

    def role(self, name: str | None) -> RolePolicy:
        """The role called ``name``; :class:`AccessDeniedError` when the policy has none."""
        if not isinstance(name, str) or name not in self.roles:
            raise AccessDeniedError(f"the policy {self.name!r} has no role {name!r}; its roles are "
                                    f"{sorted(self.roles)} (pass one as role= or --role)")
        return self.roles[name]


def _names(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidArgumentError(f"{what} must be a list of column names, got {value!r}")
    return tuple(value)


def _role(name: str, spec: Any, policy: str, line: int | None,
          settings: Mapping[str, Any]) -> RolePolicy:
    where = _where(policy, line, name)
    if not isinstance(spec, Mapping):
        raise InvalidArgumentError(f"{where}: a role is a mapping with columns, masked, row_filter; "
                                   f"got {spec!r}")
    unknown = sorted(set(spec) - _ROLE_KEYS)
    if unknown:
        raise InvalidArgumentError(f"{where}: unknown key(s) {unknown}; a role has {sorted(_ROLE_KEYS)}")
    columns_spec = spec.get("columns", [])
    columns = None if columns_spec == "*" else _names(columns_spec, f"{where}: columns (or \"*\")")
    exclude = _names(spec.get("exclude", []), f"{where}: exclude")
    if exclude and columns is not None:
        raise InvalidArgumentError(f"{where}: exclude goes with columns: \"*\"; with a list of columns, "
                                   "leave the excluded ones out of it")
    masked_spec = spec.get("masked") or {}
    if not isinstance(masked_spec, Mapping):
        raise InvalidArgumentError(f"{where}: masked maps column names to operators, e.g. "
                                   "{email: {op: mask, keep_last: 4}}")
    lines = {str(c): _line(masked_spec, c) or 0 for c in masked_spec}
    if isinstance(columns_spec, list):
        lines.update({c: lines.get(c) or _line(spec, "columns") or 0 for c in columns_spec})
    lines.update({c: _line(spec, "exclude") or 0 for c in exclude}, **{"": line or 0})
    twice = sorted(set(columns or ()) & set(masked_spec))
    if twice:
        raise InvalidArgumentError(f"{where}: column(s) {twice} are under both columns and masked; "
                                   "list a masked column under masked only")
    masked = {}
    for column, ops in masked_spec.items():
        masked[str(column)] = _check_operators(str(column), ops, _where(policy, lines[str(column)] or line,
                                                                        name), settings)
    row_filter = None
    if spec.get("row_filter") is not None:
        filter_where = _where(policy, _line(spec, "row_filter") or line, name)
        try:
            row_filter = parse_filter(spec["row_filter"])
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{filter_where}: row_filter: {exc}") from None
        lines["row_filter"] = _line(spec, "row_filter") or 0
    return RolePolicy(name, columns, exclude, masked, row_filter, policy,
                      {k: v for k, v in lines.items() if v})


def _check_operators(column: str, ops: Any, where: str, settings: Mapping[str, Any]) -> list[Any]:
    specs = ops if isinstance(ops, list) else [ops]
    out = []
    for one in specs:
        one = {"op": one} if isinstance(one, str) else dict(one) if isinstance(one, Mapping) else one
        op = one.get("op") if isinstance(one, dict) else None
        if op in _REFUSED_OPERATORS:
            raise InvalidArgumentError(f"{where}: column {column!r}: {op!r} cannot mask at read time: it "
                                       f"{_REFUSED_OPERATORS[op]}")
        if isinstance(one, dict) and op in ("pseudonymize", "scrub"):
            one.setdefault("namespace", settings.get("namespace", "default"))
            one.setdefault("version", settings.get("key_version", 1))
        if isinstance(one, dict) and isinstance(one.get("hierarchy"), str) and settings.get("_base"):
            one["hierarchy"] = os.path.join(settings["_base"], os.path.expanduser(one["hierarchy"]))
        try:
            make_operator(one, column)  # checks the name and parameters now; built anew per read
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{where}: {exc}") from None
        out.append(one)
    if not out:
        raise InvalidArgumentError(f"{where}: column {column!r} has an empty operator list")
    return out


def _key_spec(section: Mapping[str, Any], base: str, where: str) -> dict[str, Any]:
    if section.get("key_file") is not None and section.get("key_env") is not None:
        raise InvalidArgumentError(f"{where}: give key_file or key_env, not both")
    if section.get("key_file") is not None:
        return {"key_file": os.path.join(base, os.path.expanduser(str(section["key_file"])))}
    if section.get("key_env") is not None:
        return {"key_env": str(section["key_env"])}
    return {}


def _audit(spec: Any, base: str, name: str, line: int | None) -> tuple[Path, Path | None, dict[str, Any]]:
    where = f"{name} line {line}" if line else name
    if not isinstance(spec, Mapping) or not spec.get("log"):
        raise InvalidArgumentError(f"{where}: audit needs at least log: and key_file: (or key_env:), "
                                   "e.g. audit: {log: audit.jsonl, checkpoint: audit.head, "
                                   "key_file: audit.key}")
    unknown = sorted(set(spec) - _AUDIT_KEYS)
    if unknown:
        raise InvalidArgumentError(f"{where}: unknown audit key(s) {unknown}; they are {sorted(_AUDIT_KEYS)}")
    key = _key_spec(spec, base, f"{where}: audit")
    if not key:
        raise InvalidArgumentError(f"{where}: the audit log needs a key: key_file: PATH or key_env: NAME "
                                   "(make one with `kiln key new audit.key`)")
    log = Path(os.path.join(base, os.path.expanduser(str(spec["log"]))))
    checkpoint = spec.get("checkpoint")
    head = None if checkpoint is None else Path(os.path.join(base, os.path.expanduser(str(checkpoint))))
    return log, head, key


def load_policy(policy: Policy | Mapping[str, Any] | str | os.PathLike[str]) -> Policy:
    """Load and check a policy (a YAML file, a mapping of the same shape, or a Policy).

    Errors name the file, the line, the role and the column:
    :class:`~datakiln.errors.InvalidArgumentError` for a malformed policy.
    """
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, Mapping):
        data, name, base = policy, "<policy>", ""
        digest = hashlib.sha256(json.dumps(policy, sort_keys=True, default=str).encode()).hexdigest()
    elif isinstance(policy, (str, os.PathLike)):
        path = Path(os.fspath(policy)).expanduser()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read the policy {str(path)!r}: "
                                       f"{exc.strerror or exc}") from None
        name, base, digest = str(path), str(path.parent), hashlib.sha256(raw).hexdigest()
        try:
            data = yaml.load(raw, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{name} {exc}") from None
        except yaml.YAMLError as exc:
            raise InvalidArgumentError(f"the policy {name!r} is not valid YAML: {exc}") from None
    else:
        raise InvalidArgumentError(f"policy= takes a YAML file path, a dict or a Policy, got "
                                   f"{type(policy).__name__}")
    return _from_data(data, name, base, digest)


def _from_data(data: Any, name: str, base: str, digest: str) -> Policy:
    if not isinstance(data, Mapping) or not isinstance(data.get("roles"), Mapping) or not data["roles"]:
        raise InvalidArgumentError(f"the policy {name!r} needs a 'roles' mapping (role name -> columns, "
                                   "masked, row_filter) and an 'audit' section")
    unknown = sorted(set(data) - _POLICY_KEYS)
    if unknown:
        raise InvalidArgumentError(f"the policy {name!r} has unknown key(s) {unknown}; the keys are "
                                   f"{sorted(_POLICY_KEYS)}")
    if data.get("version", 1) != 1:
        raise InvalidArgumentError(f"the policy {name!r} has version {data['version']!r}; this datakiln "
                                   "reads version 1")
    if "audit" not in data:
        raise InvalidArgumentError(f"the policy {name!r} has no audit section: every read under a "
                                   "policy is logged, so give audit: {log: ..., key_file: ...}")
    log, head, audit_key = _audit(data["audit"], base, name, _line(data, "audit"))
    settings = {"namespace": data.get("namespace", "default"), "key_version": data.get("key_version", 1),
                "_base": base}
    roles = {}
    for role_name, spec in data["roles"].items():
        roles[str(role_name)] = _role(str(role_name), spec, name, _line(data["roles"], role_name),
                                      settings)
    return Policy(roles, log, head, audit_key, _key_spec(data, base, name), settings["namespace"],
                  settings["key_version"], name, digest)


# -- enforcement -----------------------------------------------------------------------------------
def _check_columns(role: RolePolicy, source: Any) -> None:
    names = source.schema.names
    named = [*(role.columns or ()), *role.masked, *role.exclude,
             *(role.row_filter.columns if role.row_filter else ())]
    for column in named:
        if column not in names:
            item = "row_filter" if role.row_filter and column in role.row_filter.columns else column
            raise SchemaError(f"{role.where(item)}: column {column!r} is not in "
                              f"{redact_text(str(source.name))!r}; its columns are {names}: fix the "
                              "policy (a misspelt masked column would otherwise go unmasked)")


def _kind_of(ds: Dataset, column: str) -> tuple[str | None, str | None]:
    """Kind and PII type of one column, from a sample of it alone (for ``format: auto``)."""
    from datakiln.schema import infer_schema

    sample = Dataset(ds.source).select([column]).head(1_000)
    inferred = infer_schema(sample, {k: v for k, v in ds._kinds.items() if k == column})[column]
    return inferred.kind, inferred.pii


def _bind(role: RolePolicy, policy: Policy, ds: Dataset) -> dict[str, list[Operator]]:
    """The role's masking operators, built and bound to their columns (and the key)."""
    from datakiln.errors import KeyFileError

    built = {column: [make_operator(spec, column) for spec in specs]
             for column, specs in role.masked.items()}
    keyed = sorted(c for c, ops in built.items() if any(op.needs_key for op in ops))
    key = None
    if keyed:
        if not policy.key:
            raise KeyFileError(f"{role.where(keyed[0])}: column(s) {keyed} are pseudonymised but the "
                               "policy names no key: add key_file: PATH (or key_env: NAME) at its top "
                               "level; make a key with `kiln key new PATH`")
        from datakiln.privacy.keys import resolve_key

        key = resolve_key(**policy.key, what=f"pseudonymising {keyed} under {policy.name!r}")
    schema = ds.source.schema
    for column, operators in built.items():
        dtype = schema.field(column).type
        dtype = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
        auto = any(getattr(op, "format", None) == "auto" for op in operators)
        kind, pii = _kind_of(ds, column) if auto else (None, None)
        for operator in operators:
            try:
                operator.bind(column, dtype, kind, pii, key)
            except DatakilnError as exc:
                raise type(exc)(f"{role.where(column)}: {exc}") from None
            dtype = operator.output_type(dtype)
    return built


def apply_policy(ds: Dataset | Callable[[], Dataset], *, policy: Any, role: str | None) -> Dataset:
    """``ds`` (just opened by :func:`datakiln.read`, or a function opening it) as ``role`` of
    ``policy`` may read it.

    This is the read hook :func:`datakiln.read` calls for ``policy=`` / ``role=`` (see the
    module docstring for what is enforced). The audit key and, when a column is
    pseudonymised, the pseudonym key are loaded here, so a read that could not be logged or
    masked fails before any data is read.

    Raises
    ------
    AccessDeniedError
        The policy has no such role, or the role may read none of the columns.
    SchemaError
        The policy names a column the data does not have (file, line, role and column named).
    InvalidArgumentError, KeyFileError
        A malformed policy, a row filter that does not fit the column types, a missing key.
    """
    if policy is None or role is None:
        raise InvalidArgumentError("an access policy needs both policy= (a YAML file) and role= (a role "
                                   "it defines); on the command line --policy FILE --role NAME")
    from datakiln.privacy._guarded import GuardedSource, withholding_details
    from datakiln.privacy.audit import AuditLog
    from datakiln.privacy.keys import resolve_key

    loaded = load_policy(policy)
    rules = loaded.role(role)
    if not isinstance(ds, Dataset):
        with withholding_details(rules.name, "the data"):
            ds = ds()
    if ds._ops:
        raise InvalidArgumentError("apply_policy takes a dataset just opened by datakiln.read; read it "
                                   "with datakiln.read(path, policy=..., role=...) instead")
    source = ds.source
    _check_columns(rules, source)
    visible = rules.visible(source.schema.names)
    if not visible:
        raise AccessDeniedError(f"{rules.where()}: the role may read none of the columns of "
                                f"{redact_text(str(source.name))!r}")
    expression = None
    if rules.row_filter is not None:
        try:
            expression = rules.row_filter.expression(source.schema)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{rules.where('row_filter')}: {exc}") from None
    masks = _bind(rules, loaded, ds)
    audit = AuditLog(loaded.audit_log, checkpoint=loaded.audit_checkpoint,
                     key=resolve_key(**loaded.audit_key, what=f"the audit log of {loaded.name!r}"))
    event = {"role": rules.name, "policy": Path(loaded.name).name, "policy_sha256": loaded.digest[:16],
             "source": redact_text(str(source.name)),
             "row_filter": None if rules.row_filter is None else rules.row_filter.text}
    guarded = GuardedSource(source, visible, masks, expression, audit, event,
                            f"policy:{loaded.digest}:{rules.name}")
    return Dataset(guarded, kinds={k: v for k, v in ds._kinds.items() if k in visible},
                   memory_budget=ds._memory_budget, num_threads=ds._num_threads, on_error=ds._on_error)


register_read_hook("policy", apply_policy)
