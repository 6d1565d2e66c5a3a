"""Privacy accounting: zero-concentrated DP (zCDP) with conversion to (ε, δ)-DP, and basic composition.

datakiln's DP synthesizers account in **zCDP** (Bun & Steinke 2016): a budget (ε, δ) is
turned into a zCDP budget ρ, every measurement spends part of ρ, and ρ-zCDP composes by
adding. The conversion used both ways is the standard bound

    ρ-zCDP  ⇒  (ρ + 2·sqrt(ρ·ln(1/δ)), δ)-DP  for every δ > 0,

so the largest ρ an (ε, δ) budget allows is ``(sqrt(ln(1/δ) + ε) - sqrt(ln(1/δ)))²``.
Per mechanism (all with add/remove-one-row neighbours):

- Gaussian noise of standard deviation σ on a query of L2 sensitivity Δ: ρ = Δ² / (2σ²);
- Laplace noise of scale b = Δ₁/ε (L1 sensitivity Δ₁) is ε-DP, hence ε²/2-zCDP;
- the exponential mechanism with parameter ε (score sensitivity 1) is ε²/8-zCDP.

:class:`BasicAccountant` is the plain alternative: (ε, δ) pairs summed (basic composition),
for pure-ε work such as Laplace counts. Both refuse, with
:class:`~datakiln.errors.PrivacyBudgetError`, any spend that would take them past the budget,
before the measurement is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from datakiln.errors import InvalidArgumentError, PrivacyBudgetError

__all__ = ["BasicAccountant", "ZCDPAccountant", "check_budget", "eps_from_rho", "rho_from_eps"]

_SLACK = 1e-9  # relative rounding room when a spend lands exactly on the budget


def check_budget(epsilon: Any, delta: Any, *, allow_inf: bool = True) -> tuple[float, float]:
    """``(epsilon, delta)`` as floats, or :class:`InvalidArgumentError` saying what is allowed.

    ``epsilon`` must be > 0 (``math.inf``: no noise at all, for comparisons only); ``delta``
    in (0, 1).
    """
    if isinstance(epsilon, str) and epsilon.strip().lower() in ("inf", "infinity"):
        epsilon = math.inf
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or math.isnan(epsilon) or \
            epsilon <= 0 or (math.isinf(epsilon) and not allow_inf):
        raise InvalidArgumentError(f"epsilon must be a number > 0 (e.g. 1.0; smaller is more private), "
                                   f"got {epsilon!r:.40}")
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 < delta < 1:
        raise InvalidArgumentError(f"delta must be a number in (0, 1), well below 1/rows (e.g. 1e-6), "
                                   f"got {delta!r:.40}")
    return float(epsilon), float(delta)


def rho_from_eps(epsilon: float, delta: float) -> float:
    """The largest ρ whose zCDP guarantee converts to (``epsilon``, ``delta``)-DP (inf for ε = inf)."""
    epsilon, delta = check_budget(epsilon, delta)
    if math.isinf(epsilon):
        return math.inf
    log_term = math.log(1 / delta)
    return (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2


def eps_from_rho(rho: float, delta: float) -> float:
    """The ε of (ε, ``delta``)-DP that ρ-zCDP implies: ``rho + 2 sqrt(rho ln(1/delta))``."""
    if rho < 0:
        raise InvalidArgumentError(f"rho must be >= 0, got {rho!r}")
    if math.isinf(rho):
        return math.inf
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


@dataclass
class ZCDPAccountant:
    """A zCDP budget converted from (``epsilon``, ``delta``); spends add up in ρ.

    Examples
    --------
    >>> acct = ZCDPAccountant(1.0, 1e-6)
    >>> acct.spend(acct.budget_rho / 2, "marginals")
    >>> round(acct.spent()["epsilon"], 3) < 1.0
    True
    """

    epsilon: float
    delta: float
    ledger: list[dict[str, Any]] = field(default_factory=list)
    method: str = "zCDP"

    def __post_init__(self) -> None:
        self.epsilon, self.delta = check_budget(self.epsilon, self.delta)

    @property
    def budget_rho(self) -> float:
        """The total ρ the budget allows (inf for ε = inf)."""
        return rho_from_eps(self.epsilon, self.delta)

    @property
    def rho_spent(self) -> float:
        return math.fsum(entry["rho"] for entry in self.ledger)

    def spend(self, rho: float, what: str) -> None:
        """Record a ρ-zCDP measurement named ``what``; refuse it if the budget would be exceeded."""
        if not rho >= 0:
            raise InvalidArgumentError(f"a spend of rho must be >= 0, got {rho!r} for {what!r}")
        total = self.rho_spent + rho
        if total > self.budget_rho * (1 + _SLACK):
            raise PrivacyBudgetError(
                f"{what!r} would spend rho={rho:.6g}, taking the total to {total:.6g} of the budget "
                f"rho={self.budget_rho:.6g} (epsilon={self.epsilon:g}, delta={self.delta:g}, zCDP); "
                f"raise epsilon or measure less")
        self.ledger.append({"what": what, "rho": float(rho)})

    def remaining(self) -> float:
        """ρ still unspent."""
        return max(self.budget_rho - self.rho_spent, 0.0)

    def spent(self) -> dict[str, float]:
        """``{"epsilon", "delta", "rho"}`` spent so far (ε through the zCDP conversion at ``delta``)."""
        rho = self.rho_spent
        return {"epsilon": min(eps_from_rho(rho, self.delta), self.epsilon), "delta": self.delta, "rho": rho}


@dataclass
class BasicAccountant:
    """(ε, δ) budget under basic composition: spends of (ε_i, δ_i) add up in both coordinates."""

    epsilon: float
    delta: float = 0.0
    ledger: list[dict[str, Any]] = field(default_factory=list)
    method: str = "basic composition"

    def __post_init__(self) -> None:
        self.epsilon, _ = check_budget(self.epsilon, 0.5)
        delta = self.delta
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 <= delta < 1:
            raise InvalidArgumentError(f"delta must be in [0, 1), got {self.delta!r:.40}")

    def spend(self, epsilon: float, what: str, delta: float = 0.0) -> None:
        """Record an (``epsilon``, ``delta``)-DP measurement; refuse it past the budget."""
        if not epsilon >= 0 or not delta >= 0:
            raise InvalidArgumentError(f"a spend must be >= 0, got epsilon={epsilon!r}, delta={delta!r}")
        eps_total = math.fsum([*(e["epsilon"] for e in self.ledger), epsilon])
        delta_total = math.fsum([*(e["delta"] for e in self.ledger), delta])
        if eps_total > self.epsilon * (1 + _SLACK) or delta_total > self.delta * (1 + _SLACK) + 1e-300:
            raise PrivacyBudgetError(
                f"{what!r} would take the spend to epsilon={eps_total:.6g}, delta={delta_total:.3g} of the "
                f"budget epsilon={self.epsilon:g}, delta={self.delta:g} (basic composition); raise the "
                f"budget or measure less")
        self.ledger.append({"what": what, "epsilon": float(epsilon), "delta": float(delta)})

    def spent(self) -> dict[str, float]:
        """``{"epsilon", "delta"}`` spent so far."""
        return {"epsilon": math.fsum(e["epsilon"] for e in self.ledger),
                "delta": math.fsum(e["delta"] for e in self.ledger)}
