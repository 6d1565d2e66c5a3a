"""``pseudonymize``: keyed, consistent pseudonyms (HMAC-SHA256 or format-preserving).

The same key, namespace and version give the same pseudonym for the same value in every
table and every run, so joins on a pseudonymised column pair the same rows as joins on the
original; a different key (or namespace, or version) gives unrelated pseudonyms. Keys come
from :mod:`datakiln.privacy.keys` (a key file or an environment variable, never a default)
and are derived with HKDF per purpose, namespace and version, so the key file itself is never
used directly and pseudonyms of one namespace cannot be joined with another's.

Formats
-------
``"hmac"`` (default)
    Hex text of HMAC-SHA256 over the value's UTF-8 bytes (``length`` hex digits, default 32 =
    128 bits; 64 keeps the whole digest). Unlike a plain hash (Presidio's ``hash`` operator),
    it cannot be reversed by hashing a dictionary of candidate values without the key.
``"email"``, ``"phone"``, ``"identifier"``, ``"integer"``
    Format-preserving and collision-free: a keyed bijection on the value's own domain (see
    :mod:`datakiln.privacy._fpe`): an e-mail keeps its domain and the shape of its local
    part, a phone number its punctuation and number of digits, an identifier its character
    classes, an integer its sign and number of digits.
``"auto"``
    ``email``/``phone`` for those PII columns, ``integer`` for integer columns,
    ``identifier`` for other identifier columns, ``hmac`` otherwise.
"""

from __future__ import annotations

import hmac
from hashlib import sha256
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError, KeyFileError
from datakiln.privacy.operators import Operator, register

__all__ = ["FORMATS", "Pseudonymize", "hmac_pseudonyms", "pseudonymize"]

FORMATS = ("hmac", "email", "phone", "identifier", "integer", "auto")
PURPOSE_HMAC = "pseudonym-hmac"
PURPOSE_FPE = "pseudonym-fpe"


def hmac_pseudonyms(values: pa.Array | pa.ChunkedArray, key: bytes, *, length: int = 32,
                    prefix: str = "") -> pa.Array:
    """HMAC-SHA256 hex pseudonyms of ``values`` (text; other types as their text form).

    Each distinct value of a batch is hashed once. ``key`` is the derived pseudonym key
    (32 bytes); nulls stay null.

    >>> hmac_pseudonyms(pa.array(["a", None, "a"]), b"k" * 32, length=8).to_pylist()
    ['d8bd1537', None, 'd8bd1537']
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    encoded = pc.dictionary_encode(values)
    digests = [prefix + hmac.new(key, text.encode("utf-8"), sha256).hexdigest()[:length]
               for text in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(digests, pa.string()), encoded.indices)


@register
class Pseudonymize(Operator):
    """Replace each value by a keyed pseudonym (see the module docstring for the formats).

    Parameters
    ----------
    format : str, default "hmac"
        ``hmac``, ``email``, ``phone``, ``identifier``, ``integer`` or ``auto``.
    namespace : str, default "default"
        Pseudonyms join only within one namespace (HKDF info); use one per sharing scope.
    version : int, default 1
        The pseudonym key version; bump it to rotate every pseudonym.
    length : int, default 32
        Hex digits of an ``hmac`` pseudonym (16 … 64).
    prefix : str, default ""
        Text put before an ``hmac`` pseudonym (e.g. ``"cust_"``).
    keep_leading : int, default 0
        Format-preserving formats: leading letters/digits kept as they are (a country code).
    """

    name = "pseudonymize"
    needs_key = True

    def __init__(self, format: str = "hmac", namespace: str = "default", version: int = 1,
                 length: int = 32, prefix: str = "", keep_leading: int = 0) -> None:
        self.format, self.namespace, self.version = format, namespace, version
        self.length, self.prefix, self.keep_leading = length, prefix, keep_leading
        self._resolved: str | None = None
        self._key: Any = None

    def validate(self, column: str) -> None:
        if self.format not in FORMATS:
            raise InvalidArgumentError(f"column {column!r}: pseudonymize format {self.format!r} is not "
                                       f"one of {FORMATS}")
        if not isinstance(self.length, int) or not 16 <= self.length <= 64:
            raise InvalidArgumentError(f"column {column!r}: pseudonymize length must be 16 … 64 hex "
                                       f"digits, got {self.length!r}")
        if not isinstance(self.keep_leading, int) or self.keep_leading < 0:
            raise InvalidArgumentError(f"column {column!r}: keep_leading must be a whole number >= 0, "
                                       f"got {self.keep_leading!r}")
        if not isinstance(self.namespace, str):
            raise InvalidArgumentError(f"column {column!r}: namespace must be text, got {self.namespace!r}")

    def bind(self, column: str, dtype: pa.DataType, kind: str | None, pii: str | None,
             key: Any) -> None:
        """Choose the concrete format for this column and derive its key."""
        from datakiln.privacy._fpe import FormatPreservingCipher

        if key is None:
            raise KeyFileError(f"column {column!r} is to be pseudonymised but no key was given; "
                               "datakiln has no default key: make one with `kiln key new key.bin` and "
                               "pass key='key.bin' (or --key-file key.bin)")
        chosen = self.format
        integer = pa.types.is_integer(dtype)
        if chosen == "auto":
            chosen = ("integer" if integer else pii if pii in ("email", "phone")
                      else "identifier" if kind == "identifier" else "hmac")
        text = pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
        if chosen == "integer" and not integer:
            raise InvalidArgumentError(f"column {column!r}: format 'integer' needs an integer column, "
                                       f"got {dtype}; use 'identifier' or 'hmac'")
        if chosen in ("email", "phone", "identifier") and not text:
            raise InvalidArgumentError(f"column {column!r}: format {chosen!r} needs a text column, got "
                                       f"{dtype}; use 'integer' for integers or 'hmac'")
        self._resolved = chosen
        if chosen == "hmac":
            self._key = key.derive(PURPOSE_HMAC, namespace=self.namespace, version=self.version)
        else:
            material = key.derive(PURPOSE_FPE, namespace=self.namespace, version=self.version)
            self._key = FormatPreservingCipher(material)
        self.key_id, self.key_version = key.key_id, self.version

    def output_type(self, dtype: pa.DataType) -> pa.DataType:
        return pa.string() if self._resolved == "hmac" else dtype

    def apply(self, values: pa.Array, offset: int) -> pa.Array:
        if self._resolved is None:
            raise InvalidArgumentError("pseudonymize was used before bind(); use datakiln.privacy."
                                       "anonymize or call bind(column, type, kind, pii, key)")
        if self._resolved == "hmac":
            return hmac_pseudonyms(values, self._key, length=self.length, prefix=self.prefix)
        if self._resolved == "integer":
            return self._key.encrypt_integers(values)
        return self._key.encrypt(values, self._resolved, keep_leading=self.keep_leading)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self._resolved or self.format, "namespace": self.namespace,
                               "key_version": self.version}
        if (self._resolved or self.format) == "hmac":
            out.update(length=self.length, prefix=self.prefix)
        elif self.keep_leading:
            out["keep_leading"] = self.keep_leading
        if getattr(self, "key_id", None):
            out["key_id"] = self.key_id
        return out


def pseudonymize(values: pa.Array | pa.ChunkedArray | list[Any], key: Any, *, format: str = "hmac",
                 namespace: str = "default", version: int = 1, **options: Any) -> pa.Array:
    """Pseudonyms of ``values`` (an Arrow array or a list) in one call.

    ``key`` is a :class:`~datakiln.privacy.keys.Key`, key bytes or a key file path; the other
    arguments are those of :class:`Pseudonymize` (``format="auto"`` acts as for an
    identifier column).

    >>> pseudonymize(["555-0100", "555-0101"], b"k" * 32, format="phone").to_pylist()
    ['311-7440', '138-7295']
    """
    from datakiln.privacy.keys import resolve_key
    from datakiln.privacy.operators import as_array

    array = as_array(values) if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
    operator = Pseudonymize(format=format, namespace=namespace, version=version, **options)
    operator.validate("values")
    operator.bind("values", array.type, "identifier", None, resolve_key(key, what="pseudonymize"))
    return operator.apply(array, 0)
