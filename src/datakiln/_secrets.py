"""Keep passwords and tokens in URLs out of everything datakiln shows or stores.

``redact_url`` masks the password of a URL's user part and the values of secret query
parameters (``?password=``, ``?token=`` ...); ``redact_text`` does the same for every URL
inside a message and for the secret values of the URLs it is given (a driver's error can
quote a host or option taken from the password). Both work without SQLAlchemy, so file and
object-store URLs are masked as well as database URLs, and :class:`datakiln.DatakilnError`
masks every message with ``redact_text`` (this module imports nothing of datakiln, so the
bottom layer can use it).

Why not only SQLAlchemy's ``URL.render_as_string(hide_password=True)``: it takes the user
part to end at the *first* ``@``, so ``postgresql://u:p@ss@host/db`` shows ``ss@host`` (part
of the password) as the host, and it leaves ``?password=`` in the query in clear. Here the
user part ends at the *last* ``@`` (a host never contains one), erring towards masking too
much (when a query value holds an ``@``) rather than too little. :func:`split_url` gives the same
split to :mod:`datakiln.io._sqlconn`, so such a password also connects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["MASK", "SECRET_KEYS", "UrlParts", "redact_text", "redact_url", "split_url",
           "url_secrets"]

MASK = "***"
#: query-string keys whose values are secrets (compared case-insensitively)
SECRET_KEYS = frozenset({
    "password", "passwd", "pwd", "sslpassword", "sslkey", "token", "access_token", "secret",
    "api_key", "apikey", "aws_secret_access_key", "aws_session_token", "client_secret",
    "sas_token", "account_key",
})
_SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "_key")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s<>]+")


@dataclass(frozen=True)
class UrlParts:
    """A URL split as ``scheme://[user[:password]@]location[?query]`` (password decoded: no)."""

    scheme: str
    user: str | None
    password: str | None
    location: str  # host, port and path
    query: str | None  # without the "?"


def _is_secret_key(key: str) -> bool:
    key = unquote(key).strip().lower()
    return key in SECRET_KEYS or key.endswith(_SECRET_SUFFIXES)


def split_url(url: str) -> UrlParts | None:
    """Split ``url`` into its parts, or None when it is not a ``scheme://`` URL.

    The user part ends at the last ``@`` whose user name (the text before the first ``:``)
    holds no ``/``, ``?`` or ``#``, so an unencoded ``@`` in a password stays in the password,
    and an ``@`` in the path of a URL without credentials is not taken for one.
    """
    match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*)://", url)
    if match is None:
        return None
    scheme, rest = match.group(1), url[match.end():]
    user = password = None
    at = len(rest)
    while (at := rest.rfind("@", 0, at)) >= 0:
        name, sep, secret = rest[:at].partition(":")
        if not any(c in name for c in "/?#"):  # else this "@" is in the path or query
            user, password = name, secret if sep else None
            rest = rest[at + 1:]
            break
    location, sep, query = rest.partition("?")
    return UrlParts(scheme, user, password, location, query if sep else None)


def _redact_query(query: str) -> str:
    pairs = []
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        pairs.append(f"{key}={MASK}" if sep and value and _is_secret_key(key) else pair)
    return "&".join(pairs)


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``.

    Text that is not a ``scheme://`` URL (a local path) is returned unchanged.

    >>> redact_url("postgresql://me:p@ss@db.example.org:5432/sales?sslmode=require&token=abc")
    'postgresql://me:***@db.example.org:5432/sales?sslmode=require&token=***'
    """
    parts = split_url(url)
    if parts is None:
        return url
    out = f"{parts.scheme}://"
    if parts.user is not None:
        out += parts.user + (f":{MASK}" if parts.password else "") + "@"
    out += parts.location
    if parts.query is not None:
        out += "?" + _redact_query(parts.query)
    return out


def url_secrets(url: str) -> list[str]:
    """The secret values inside ``url`` (password, secret query values), raw and decoded."""
    parts = split_url(url)
    if parts is None:
        return []
    values = [parts.password] if parts.password else []
    for pair in (parts.query or "").split("&"):
        key, sep, value = pair.partition("=")
        if sep and value and _is_secret_key(key):
            values.append(value)
    found = {v for value in values for v in (value, unquote(value), unquote(value.replace("+", " ")))}
    # longest first, so a value that contains another is masked whole
    return sorted((v for v in found if len(v) >= 3), key=len, reverse=True)


def redact_text(text: str, *urls: str) -> str:
    """``text`` with every URL in it redacted, and the secrets of ``urls`` masked anywhere.

    Use it on messages that quote a URL or a database driver's error about one.
    """
    for url in urls:
        for secret in url_secrets(url):
            text = text.replace(secret, MASK)
    return _URL_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    # a URL quoted in a message or JSON ends before its closing quotes and brackets
    token = match.group(0)
    url = token.rstrip("'\"}])>,:;.")  # "... at 'url?password=x': ..." keeps its "':"
    return redact_url(url) + token[len(url):]
