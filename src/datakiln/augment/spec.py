"""Op strings: ``"crop:32,padding=4; flip; jitter:0.4"`` → a :class:`Compose`.

Grammar (what ``kiln augment --ops`` takes)::

    pipeline := op (";" op)*
    op       := name [":" arg ("," arg)*]
    arg      := value | keyword "=" value
    value    := number | true | false | none | word | "(" value ("," value)* ")"

Positional values fill the op's parameters in order (``crop:32`` is ``RandomCrop(32)``);
a tuple is written in parentheses or brackets (``rrc:224,scale=(0.08,1)``). ``p=...`` on an
op that has no ``p`` wraps it in :class:`RandomApply` (``blur:5,p=0.3``). Shorthands:
``jitter:V`` is ``ColorJitter(V, V, V)``, ``eda:A`` is ``EDA(A, A, A, A)``, and a single
``x`` inside a value makes a pair (``crop:32x24`` is ``RandomCrop((32, 24))``). Text ops
(``synonym:0.1; swap:0.1``) and table ops (``table_jitter:0.05; table_mixup:0.2``) use
the same grammar. Unknown ops and arguments are
:class:`~datakiln.errors.InvalidArgumentError` listing the valid ones.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from datakiln.augment.base import Augmenter, Compose, RandomApply
from datakiln.errors import DatakilnError, InvalidArgumentError

__all__ = ["OPS", "parse_ops"]

_GEOMETRY = "datakiln.augment.geometry"
_COLOR = "datakiln.augment.color"
_MIXING = "datakiln.augment.mixing"
_TEXT = "datakiln.augment.text"
_TABULAR = "datakiln.augment.tabular"

#: op name in strings → (module, class); classes are imported when an op is used
OPS: dict[str, tuple[str, str]] = {
    "crop": (_GEOMETRY, "RandomCrop"),
    "rrc": (_GEOMETRY, "RandomResizedCrop"),
    "resized_crop": (_GEOMETRY, "RandomResizedCrop"),
    "resize": (_GEOMETRY, "Resize"),
    "center_crop": (_GEOMETRY, "CenterCrop"),
    "flip": (_GEOMETRY, "HorizontalFlip"),
    "hflip": (_GEOMETRY, "HorizontalFlip"),
    "vflip": (_GEOMETRY, "VerticalFlip"),
    "rotate": (_GEOMETRY, "Rotate"),
    "affine": (_GEOMETRY, "Affine"),
    "jitter": (_COLOR, "ColorJitter"),
    "gray": (_COLOR, "Grayscale"),
    "grayscale": (_COLOR, "Grayscale"),
    "noise": (_COLOR, "GaussianNoise"),
    "blur": (_COLOR, "GaussianBlur"),
    "normalize": (_COLOR, "Normalize"),
    "erase": (_MIXING, "RandomErasing"),
    "cutout": (_MIXING, "RandomErasing"),
    "mixup": (_MIXING, "MixUp"),
    "cutmix": (_MIXING, "CutMix"),
    # text (a column of strings) and tables (numeric columns)
    "synonym": (_TEXT, "SynonymReplace"),
    "insert": (_TEXT, "RandomInsert"),
    "swap": (_TEXT, "RandomSwap"),
    "delete": (_TEXT, "RandomDelete"),
    "eda": (_TEXT, "EDA"),
    "table_jitter": (_TABULAR, "GaussianJitter"),
    "table_mixup": (_TABULAR, "TabularMixUp"),
}

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_PAIR = re.compile(r"(\d+)[xX](\d+)")


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth < 0:
                raise InvalidArgumentError(f"unbalanced ')' in {text!r}")
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise InvalidArgumentError(f"unbalanced '(' in {text!r}")
    parts.append(text[start:])
    return parts


def _value(text: str, where: str) -> Any:
    text = text.strip()
    if text[:1] in "([" and text[-1:] in ")]":
        inner = text[1:-1].strip()
        return tuple(_value(part, where) for part in _split(inner, ",")) if inner else ()
    if _NUMBER.fullmatch(text):
        number = float(text)
        return int(number) if number.is_integer() and not re.search(r"[.eE]", text) else number
    pair = _PAIR.fullmatch(text)
    if pair:
        return int(pair.group(1)), int(pair.group(2))
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    if _WORD.fullmatch(text):
        return text
    raise InvalidArgumentError(f"{where}: cannot read the value {text!r} (numbers, true/false, "
                               f"none, words and (a,b) tuples are allowed)")


def _op_class(name: str) -> type[Augmenter]:
    module, attr = OPS[name]
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidArgumentError(f"op {name!r}: {module}.{attr} is not available ({exc})") from exc


def _parameters(cls: type[Augmenter]) -> list[str]:
    return [p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _build(name: str, args: list[str], where: str) -> Augmenter:
    cls = _op_class(name)
    valid = _parameters(cls)
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for arg in args:
        key, eq, raw = arg.partition("=")
        if not eq:
            if keywords:
                raise InvalidArgumentError(f"{where}: positional value {arg.strip()!r} after a "
                                           f"keyword argument")
            positional.append(_value(arg, where))
            continue
        key = key.strip()
        if key not in valid and key != "p":
            raise InvalidArgumentError(f"{where}: {cls.__name__} has no argument {key!r}; valid: "
                                       f"{', '.join(valid) or '(none)'}" + ("" if "p" in valid else ", p"))
        keywords[key] = _value(raw, where)
    if name == "jitter" and len(positional) == 1:
        positional = positional * 3  # jitter:V = ColorJitter(V, V, V)
    if name == "eda" and len(positional) == 1:
        positional = positional * 4  # eda:A = EDA(A, A, A, A)
    if len(positional) > len(valid):
        raise InvalidArgumentError(f"{where}: {cls.__name__} takes at most {len(valid)} values "
                                   f"({', '.join(valid)}), got {len(positional)}")
    for key, value in zip(valid, positional):
        if key in keywords:
            raise InvalidArgumentError(f"{where}: {key} given twice")
        keywords[key] = value
    wrap_p = keywords.pop("p") if "p" in keywords and "p" not in valid else None
    try:
        op = cls(**keywords)
    except DatakilnError as exc:
        raise InvalidArgumentError(f"{where}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{where}: {cls.__name__}({_show(keywords)}) is not valid: "
                                   f"{exc}") from exc
    return op if wrap_p is None else RandomApply(op, p=float(wrap_p))


def _show(keywords: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in keywords.items())


def parse_ops(text: str) -> Compose:
    """Build a :class:`Compose` from an op string.

    Parameters
    ----------
    text : str
        Ops separated by ``;`` (see the module docstring for the grammar and ``OPS`` for
        the names).

    >>> parse_ops("jitter:0.4; normalize").ops[0].saturation
    (0.6, 1.4)
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(f"an op string needs at least one op, e.g. 'crop:32,padding=4; "
                                   f"flip'; got {text!r}")
    ops: list[Augmenter] = []
    for position, chunk in enumerate(_split(text, ";"), start=1):
        chunk = chunk.strip()
        if not chunk:
            continue
        head, _, rest = chunk.partition(":")
        name = head.strip().lower()
        where = f"op {position} ({chunk!r})"
        if name not in OPS:
            raise InvalidArgumentError(f"{where}: unknown op {head.strip()!r}; valid ops: "
                                       f"{', '.join(sorted(OPS))}")
        args = [a for a in _split(rest, ",") if a.strip()] if rest.strip() else []
        ops.append(_build(name, args, where))
    if not ops:
        raise InvalidArgumentError(f"an op string needs at least one op, got {text!r}")
    return Compose(ops)
