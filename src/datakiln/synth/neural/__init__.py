"""Models on the transformed space (:mod:`._encoding`): TVAE, CTGAN and their shared base.

Importing this package does not import torch; :class:`TVAE` and :class:`CTGAN` load it
(the ``torch`` extra) when first used.
"""

from __future__ import annotations

from typing import Any

from datakiln.synth.neural.base import NeuralSynthesizer

__all__ = ["CTGAN", "TVAE", "FlowMatching", "NeuralSynthesizer"]

_LAZY = {"TVAE": "datakiln.synth.neural.tvae", "CTGAN": "datakiln.synth.neural.ctgan",
         "FlowMatching": "datakiln.synth.neural.flow"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
