"""Masking of passwords and tokens in URLs, for the sources: see :mod:`datakiln._secrets`
(kept at the package root so that :class:`datakiln.DatakilnError` itself can use it)."""

from datakiln._secrets import (
    MASK,
    SECRET_KEYS,
    UrlParts,
    redact_text,
    redact_url,
    split_url,
    url_secrets,
)

__all__ = ["MASK", "SECRET_KEYS", "UrlParts", "redact_text", "redact_url", "split_url",
           "url_secrets"]
