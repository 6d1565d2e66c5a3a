"""Import optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from datakiln.errors import MissingDependencyError


def import_optional(module: str, *, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``extra``.

    >>> np = import_optional("numpy", extra="core")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"the optional dependency {module!r} is needed{what} but is not installed; "
            f"install it with: pip install 'datakiln[{extra}]'"
        ) from exc
