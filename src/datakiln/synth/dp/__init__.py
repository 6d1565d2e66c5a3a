"""Differentially private synthesis: accountant, mechanisms, declared domains and DP synthesizers.

- :mod:`~datakiln.synth.dp.accountant`: zCDP accounting with conversion to (ε, δ)-DP
  (:class:`ZCDPAccountant`) and basic composition (:class:`BasicAccountant`);
- :mod:`~datakiln.synth.dp.mechanisms`: Gaussian/Laplace noise and their calibrations, the
  exponential mechanism;
- :mod:`~datakiln.synth.dp.domain`: the public domain (:class:`Domain`, :func:`load_domain`);
- :mod:`~datakiln.synth.dp.copula`: ``GaussianCopula(epsilon=..., domain=...)``'s DP fit;
- :mod:`~datakiln.synth.dp.mst`: :class:`MSTSynthesizer`, a maximum-spanning-tree marginal model.

Names load lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ZCDPAccountant": "accountant", "BasicAccountant": "accountant", "rho_from_eps": "accountant",
    "eps_from_rho": "accountant",
    "gaussian_sigma": "mechanisms", "gaussian_sigma_classic": "mechanisms", "laplace_scale": "mechanisms",
    "gaussian_mechanism": "mechanisms", "laplace_mechanism": "mechanisms",
    "exponential_mechanism": "mechanisms",
    "Domain": "domain", "ColumnDomain": "domain", "load_domain": "domain",
    "MSTSynthesizer": "mst",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'datakiln.synth.dp' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"datakiln.synth.dp.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
