"""A small, safe expression language for the row filters of access policies.

A policy's ``row_filter`` is text such as ``country == 'US' and age >= 18`` or
``status in ['open', 'pending'] and not (region is null)``. It is parsed here by a
hand-written recursive-descent parser into a tree, checked against the data's columns and
types, and turned into a :class:`pyarrow.compute.Expression` that the reader pushes down (a
Parquet reader skips row groups whose statistics rule them out). Nothing is ever passed to
``eval``: the grammar has no function calls, attributes or arithmetic, so a filter can only
compare columns with literals.

Grammar (keywords are case-insensitive)::

    filter     := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | test
    test       := "(" filter ")"
                | operand ("==" | "!=" | "<" | "<=" | ">" | ">=") operand
                | operand ["not"] "in" "[" literal ("," literal)* "]"
                | operand "is" ["not"] "null"
    operand    := column | literal
    column     := name (letters, digits, "_", ".") | `any name in backquotes`
    literal    := number | 'text' | "text" | true | false | null

Literals are cast to the type of the column they are compared with (``date == '2024-01-31'``
compares dates), and a comparison whose value is null keeps no row, so a filter can only
ever show fewer rows than asked, never more.

>>> parse_filter("age >= 18 and country in ['US', 'CA']").columns
['age', 'country']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError

__all__ = ["RowFilter", "parse_filter"]

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`[^`]+`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}
_COMPARE = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
            ">": pc.greater, ">=": pc.greater_equal}
_MAX_DEPTH = 50


@dataclass(frozen=True)
class _Tok:
    kind: str  # "number" | "string" | "name" | "keyword" | "op" | "end"
    text: str
    at: int  # 1-based character position in the filter text


@dataclass(frozen=True)
class _Col:
    name: str


@dataclass(frozen=True)
class _Lit:
    value: Any


@dataclass(frozen=True)
class _Node:
    op: str  # "and" | "or" | "not" | a comparison | "in" | "not in" | "is null" | "is not null"
    args: tuple[Any, ...]


class FilterSyntaxError(InvalidArgumentError):
    """The row filter text does not follow the grammar (position given)."""


def _tokens(text: str) -> list[_Tok]:
    out, at = [], 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            hint = " (use == to compare)" if text[at] == "=" else ""
            raise FilterSyntaxError(f"unexpected character {text[at]!r} at position {at + 1}{hint}")
        kind, value = match.lastgroup or "", match.group()
        if kind == "name" and value.lower() in _KEYWORDS:
            out.append(_Tok("keyword", value.lower(), at + 1))
        elif kind == "quoted":
            out.append(_Tok("name", value[1:-1], at + 1))
        elif kind != "space":
            out.append(_Tok(kind, value, at + 1))
        at = match.end()
    out.append(_Tok("end", "", len(text) + 1))
    return out


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Tok:
        return self.tokens[self.pos]

    def take(self, kind: str | None = None, text: str | None = None) -> _Tok:
        token = self.peek()
        if (kind is not None and token.kind != kind) or (text is not None and token.text != text):
            wanted = repr(text) if text is not None else {"name": "a column", "op": "an operator"}.get(
                kind or "", kind)
            found = repr(token.text) if token.kind != "end" else "the end of the filter"
            raise FilterSyntaxError(f"expected {wanted} at position {token.at}, found {found}")
        self.pos += 1
        return token

    def accept(self, kind: str, text: str) -> bool:
        token = self.peek()
        if token.kind == kind and token.text == text:
            self.pos += 1
            return True
        return False

    def parse(self) -> Any:
        node = self.or_()
        self.take("end")
        return node

    def or_(self) -> Any:
        node = self.and_()
        while self.accept("keyword", "or"):
            node = _Node("or", (node, self.and_()))
        return node

    def and_(self) -> Any:
        node = self.not_()
        while self.accept("keyword", "and"):
            node = _Node("and", (node, self.not_()))
        return node

    def not_(self) -> Any:
        if self.accept("keyword", "not"):
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise FilterSyntaxError(f"the filter nests deeper than {_MAX_DEPTH} levels")
            node = _Node("not", (self.not_(),))
            self.depth -= 1
            return node
        return self.test()

    def test(self) -> Any:
        if self.accept("op", "("):
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise FilterSyntaxError(f"the filter nests deeper than {_MAX_DEPTH} levels")
            node = self.or_()
            self.take("op", ")")
            self.depth -= 1
            return node
        start = self.peek()
        left = self.operand()
        token = self.peek()
        if token.kind == "op" and token.text in _COMPARE:
            self.pos += 1
            node = _Node(token.text, (left, self.operand()))
        elif self.accept("keyword", "is"):
            negate = self.accept("keyword", "not")
            self.take("keyword", "null")
            node = _Node("is not null" if negate else "is null", (left,))
        elif token.kind == "keyword" and token.text in ("in", "not"):
            negate = self.accept("keyword", "not")
            self.take("keyword", "in")
            node = _Node("not in" if negate else "in", (left, self.literal_list()))
        else:
            found = repr(token.text) if token.kind != "end" else "the end of the filter"
            raise FilterSyntaxError(f"expected a comparison (==, !=, <, <=, >, >=, in, is null) at "
                                    f"position {token.at}, found {found}")
        if not any(isinstance(a, _Col) for a in node.args):
            raise FilterSyntaxError(f"the test at position {start.at} compares no column")
        return node

    def operand(self) -> Any:
        token = self.peek()
        if token.kind == "name":
            self.pos += 1
            return _Col(token.text)
        return self.literal()

    def literal(self) -> _Lit:
        token = self.peek()
        self.pos += 1
        if token.kind == "number":
            is_int = re.fullmatch(r"-?\d+", token.text) is not None
            return _Lit(int(token.text) if is_int else float(token.text))
        if token.kind == "string":
            return _Lit(_unquote(token.text))
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            return _Lit({"true": True, "false": False, "null": None}[token.text])
        self.pos -= 1
        found = repr(token.text) if token.kind != "end" else "the end of the filter"
        raise FilterSyntaxError(f"expected a column or a value at position {token.at}, found {found}")

    def literal_list(self) -> tuple[_Lit, ...]:
        self.take("op", "[")
        values = [self.literal()]
        while self.accept("op", ","):
            values.append(self.literal())
        self.take("op", "]")
        return tuple(values)


def _columns(node: Any, out: list[str]) -> list[str]:
    if isinstance(node, _Col) and node.name not in out:
        out.append(node.name)
    elif isinstance(node, _Node):
        for arg in node.args:
            _columns(arg, out)
    elif isinstance(node, tuple):
        for arg in node:
            _columns(arg, out)
    return out


@dataclass(frozen=True)
class RowFilter:
    """A parsed row filter: its ``text``, the ``columns`` it reads, and :meth:`expression`."""

    text: str
    tree: Any = field(repr=False)
    columns: list[str] = field(default_factory=list)

    def expression(self, schema: pa.Schema) -> pc.Expression:
        """The filter as a pyarrow compute expression over ``schema``.

        Raises :class:`InvalidArgumentError` naming a column the schema lacks, or a literal
        that cannot be compared with its column's type.
        """
        missing = [c for c in self.columns if c not in schema.names]
        if missing:
            raise InvalidArgumentError(f"the row filter {self.text!r} names column(s) {missing} that "
                                       f"the data does not have; its columns are {schema.names}")
        expression = _compile(self.tree, schema)
        try:  # a type mismatch the casts did not catch (e.g. comparing text with a number column)
            schema.empty_table().filter(expression)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InvalidArgumentError(f"the row filter {self.text!r} does not fit the column types "
                                       f"({exc})") from None
        return expression


def _value_type(schema: pa.Schema, name: str) -> pa.DataType:
    dtype = schema.field(name).type
    return dtype.value_type if pa.types.is_dictionary(dtype) else dtype


def _scalar(literal: _Lit, dtype: pa.DataType | None, column: str | None) -> Any:
    if dtype is None or literal.value is None:
        return pa.scalar(literal.value)
    if not isinstance(literal.value, str) and (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)):
        if isinstance(literal.value, bool):
            raise InvalidArgumentError(f"the row filter compares the number column {column!r} "
                                       f"({dtype}) with {literal.value!r}")
        return pa.scalar(literal.value)  # Arrow compares numbers of any width exactly
    textual = pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
    if textual and not isinstance(literal.value, str):
        raise InvalidArgumentError(f"the row filter compares the text column {column!r} with "
                                   f"{literal.value!r}; quote the value: '{literal.value}'")
    try:
        return pa.scalar(literal.value).cast(dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        raise InvalidArgumentError(f"the row filter compares column {column!r} ({dtype}) with "
                                   f"{literal.value!r}, which is not a valid {dtype} value") from None


def _operand(arg: Any, other: Any, schema: pa.Schema) -> Any:
    if isinstance(arg, _Col):
        return pc.field(arg.name)
    column = other.name if isinstance(other, _Col) else None
    return pc.scalar(_scalar(arg, _value_type(schema, column) if column else None, column))


def _compile(node: Any, schema: pa.Schema) -> pc.Expression:
    if node.op in ("and", "or"):
        left, right = (_compile(a, schema) for a in node.args)
        return pc.and_kleene(left, right) if node.op == "and" else pc.or_kleene(left, right)
    if node.op == "not":
        return pc.invert(_compile(node.args[0], schema))
    if node.op in ("is null", "is not null"):
        if not isinstance(node.args[0], _Col):
            raise InvalidArgumentError("'is null' tests a column, not a value")
        target = pc.field(node.args[0].name)
        return target.is_null() if node.op == "is null" else target.is_valid()
    if node.op in ("in", "not in"):
        column = node.args[0]
        if not isinstance(column, _Col):
            raise InvalidArgumentError("'in' tests a column against a list of values")
        dtype = _value_type(schema, column.name)
        values = [_scalar(v, dtype, column.name) for v in node.args[1] if v.value is not None]
        target = pc.field(column.name)
        test = pc.is_in(target, value_set=pa.array([v.as_py() for v in values], dtype))
        # a null is in no list, and (as in SQL) not "not in" one either: it keeps no row
        return pc.and_kleene(pc.invert(test), target.is_valid()) if node.op == "not in" else test
    left, right = node.args
    if isinstance(left, _Lit) and left.value is None or isinstance(right, _Lit) and right.value is None:
        raise InvalidArgumentError("compare with null using 'is null' or 'is not null', not "
                                   f"{node.op!r} (a comparison with null keeps no row)")
    return _COMPARE[node.op](_operand(left, right, schema), _operand(right, left, schema))


def parse_filter(text: str) -> RowFilter:
    """Parse a row filter (see the module docstring); :class:`InvalidArgumentError` with the
    position of the first mistake when it does not follow the grammar."""
    if not isinstance(text, str) or not text.strip():
        raise FilterSyntaxError(f"a row filter is non-empty text such as \"age >= 18\", got {text!r}")
    tree = _Parser(text).parse()
    return RowFilter(text.strip(), tree, _columns(tree, []))
