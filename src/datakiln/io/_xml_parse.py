"""Streaming XML records: an expat parser that turns each record element into a flat row.

Why expat directly (and not ``ElementTree.iterparse`` or lxml): expat reports the line of
every element, so errors name the record's line, and it reports DOCTYPE entity
declarations as events, so a document declaring entities is refused *before* any entity is
expanded (no billion-laughs expansion, no external entity ever opened: there is no
external-entity handler that could open one). Only the record being built is held in
memory; everything outside records is dropped as it ends.

The row rule (see :class:`datakiln.io.xml.XmlSource`):

* an attribute of the record becomes column ``attribute_prefix + name`` (``"@id"``);
* a child element holding only text becomes a text value (``<a/>`` and ``<a></a>`` → null);
* a child element with attributes or children of its own becomes a :class:`Nested` value,
  JSON text of ``{"@attr": ..., "child": ..., "#text": ...}`` (children repeated → lists);
* a child name repeated within one record gives a Python list (a list column);
* text directly inside the record next to its children becomes column ``"#text"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from xml.parsers import expat

from datakiln.errors import ParseError

__all__ = ["Nested", "RecordPath", "iter_records"]

_READ_BYTES = 1 << 20


class Nested(str):
    """JSON text of an element that holds attributes or children (a nested value)."""

    __slots__ = ()


class RecordPath:
    """Which elements are records: ``"item"`` (any element named item), ``"channel/item"``
    (an item whose parent is channel), ``"/rss/channel/item"`` (from the root), or ``None``
    (every child of the root element). Names match the local name (namespace stripped) or
    the ``{uri}name`` form."""

    def __init__(self, record: str | None) -> None:
        self.text = record
        if record is None:
            self.parts: tuple[str, ...] = ()
            self.absolute = False
            return
        text = record.strip()
        self.absolute = text.startswith("/") and not text.startswith("//")
        self.parts = tuple(p for p in text.lstrip("/").split("/") if p)
        if not self.parts or any(p in (".", "..") or "[" in p for p in self.parts):
            raise ValueError(record)

    def matches(self, stack: list[tuple[str, str]]) -> bool:
        """Whether the element on top of ``stack`` ((local, full) names, root first) is a
        record."""
        if not self.parts:
            return len(stack) == 2
        n = len(self.parts)
        if len(stack) < n or (self.absolute and len(stack) != n):
            return False
        for want, (local, full) in zip(self.parts, stack[-n:]):
            if want != "*" and want != local and want != full:
                return False
        return True


def _names(raw: str, namespaces: str) -> tuple[str, str]:
    """(local name, name as a column) of expat's ``"uri}local"`` name."""
    if "}" not in raw:
        return raw, raw
    uri, local = raw.rsplit("}", 1)
    return local, local if namespaces == "strip" else "{" + uri + "}" + local


class _Node:
    __slots__ = ("name", "attrs", "children", "text", "line")

    def __init__(self, name: str, attrs: dict[str, str], line: int) -> None:
        self.name, self.attrs, self.line = name, attrs, line
        self.children: list[_Node] = []
        self.text: list[str] = []


def _plain(node: _Node, prefix: str) -> Any:
    """A child's value: text (or None), or a JSON-ready dict when it is nested."""
    text = "".join(node.text)
    if not node.attrs and not node.children:
        return text if text else None
    out: dict[str, Any] = {prefix + k: v for k, v in node.attrs.items()}
    for child in node.children:
        _add(out, child.name, _plain(child, prefix))
    if text.strip():
        out["#text"] = text.strip()
    return out


def _add(row: dict[str, Any], name: str, value: Any) -> None:
    if name not in row:
        row[name] = value
    elif isinstance(row[name], _Repeated):
        row[name].append(value)
    else:
        row[name] = _Repeated([row[name], value])


class _Repeated(list):
    """A child name met more than once in one record (a list value)."""


def to_row(node: _Node, prefix: str) -> dict[str, Any]:
    """The record ``node`` as ``{column: value}``; values are str, None, Nested or lists."""
    row: dict[str, Any] = {prefix + k: v for k, v in node.attrs.items()}
    for child in node.children:
        value = _plain(child, prefix)
        if isinstance(value, dict):
            value = Nested(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        _add(row, child.name, value)
    text = "".join(node.text).strip()
    if text:
        row["#text"] = text
    return row


class _Refused(Exception):
    pass


def iter_records(stream: Any, where: str, record: RecordPath, *, namespaces: str = "strip",
                 prefix: str = "@") -> Iterator[tuple[int, dict[str, Any], int]]:
    """Yield ``(line, row, bytes_read)`` for each record of the XML in binary ``stream``.

    Raises :class:`ParseError` naming the line and column of malformed XML, and refusing a
    document whose DOCTYPE declares entities or refers to an external DTD.
    """
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[tuple[str, str]] = []
    building: list[_Node] = []
    done: list[tuple[int, dict[str, Any]]] = []

    def refuse(what: str) -> None:
        raise _Refused(f"{where!r} line {parser.CurrentLineNumber}: the document {what}; "
                       "datakiln never expands XML entities (they allow reading local files "
                       "(XXE) and exponential expansion (billion laughs)): remove the "
                       "DOCTYPE's entity declarations and write the text out")

    def entity_decl(name: str, *_: Any) -> None:
        refuse(f"declares the entity {name!r}")

    def doctype(name: str, system_id: str | None, public_id: str | None, _subset: int) -> None:
        if system_id or public_id:
            refuse(f"refers to an external DTD ({system_id or public_id!r})")

    def external_ref(*_: Any) -> int:
        refuse("refers to an external entity")
        return 0

    names: dict[str, tuple[str, str]] = {}

    def start(raw: str, attrs: dict[str, str]) -> None:
        named = names.get(raw)
        if named is None:
            named = names[raw] = _names(raw, namespaces)
        local, full = named
        if building:
            node = _Node(full, _attr_names(attrs, namespaces) if attrs else attrs, 0)
            building[-1].children.append(node)
            building.append(node)
            return
        stack.append(named)
        if record.matches(stack):
            building.append(_Node(full, _attr_names(attrs, namespaces), parser.CurrentLineNumber))

    def end(_raw: str) -> None:
        if building:
            node = building.pop()
            if not building:
                stack.pop()
                if not prefix and any(child.name in node.attrs for child in node.children):
                    clash = next(c.name for c in node.children if c.name in node.attrs)
                    raise _Refused(
                        f"{where!r} line {node.line}: the record has an attribute and a child "
                        f"both named {clash!r}, which would be one column; pass "
                        "attribute_prefix='@' (the default) to tell them apart")
                done.append((node.line, to_row(node, prefix)))
            return
        stack.pop()

    def text(data: str) -> None:
        if building:
            building[-1].text.append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.EntityDeclHandler = entity_decl
    parser.StartDoctypeDeclHandler = doctype
    parser.ExternalEntityRefHandler = external_ref
    consumed = 0
    while True:
        chunk = stream.read(_READ_BYTES)
        consumed += len(chunk)
        try:
            parser.Parse(chunk, not chunk)
        except _Refused as exc:
            raise ParseError(str(exc)) from None  # from None: no expat frames for the user
        except expat.ExpatError as exc:
            raise ParseError(
                f"{where!r} line {exc.lineno}, column {exc.offset + 1}: malformed XML "
                f"({expat.ErrorString(exc.code)}); fix the file (a truncated file ends "
                "like this)") from None
        for line, row in done:
            yield line, row, consumed
        done.clear()
        if not chunk:
            return


def _attr_names(attrs: dict[str, str], namespaces: str) -> dict[str, str]:
    if not attrs:
        return attrs
    return {_names(k, namespaces)[1]: v for k, v in attrs.items()}
