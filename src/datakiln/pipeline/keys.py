"""Cache keys of pipeline stages: (input fingerprints, stage configuration, datakiln version).

A stage's key is a SHA-256 of its kind, its settings (canonical JSON, input references
replaced by the keys of the stages they name), and datakiln's version. The ``read`` stage's
input fingerprint is the source's content fingerprint plus the files' paths, sizes and
modification times (as :meth:`Dataset.cache` uses): edit the data and ``read`` and
everything after it recompute. Keys chain, so a changed stage changes the keys of every
stage downstream of it and of none upstream; nothing comes from ``id()`` or the time.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["read_fingerprint", "stage_key"]


def read_fingerprint(dataset: Any) -> str:
    """The content identity of the data a ``read`` stage opens."""
    from datakiln.dataset.cache import _file_stamp, cache_key

    return json.dumps([cache_key(dataset), _file_stamp(dataset)], default=str)


def stage_key(kind: str, settings: dict[str, Any], inputs: dict[str, str], extra: str = "") -> str:
    """The cache key of one stage.

    Parameters
    ----------
    kind : str
        The stage kind (``clean``, ``synth.fit`` ...).
    settings : dict
        The stage's settings without its input references.
    inputs : dict of str
        Input name -> ``<upstream key>.<part>``.
    extra : str
        Further identity (the ``read`` stage's content fingerprint).
    """
    from datakiln import __version__

    text = json.dumps({"kind": kind, "settings": settings, "inputs": inputs, "extra": extra,
                       "version": __version__}, sort_keys=True, default=str)
    return "stage-" + hashlib.sha256(text.encode()).hexdigest()[:40]
