"""DP primitives: Gaussian and Laplace noise with their calibrations, the exponential mechanism,
and the post-processing that turns a noisy histogram into non-negative counts.

Calibrations (sensitivities are for add/remove-one-row neighbours):

- :func:`gaussian_sigma`: σ = Δ₂ / sqrt(2ρ) gives ρ-zCDP;
- :func:`gaussian_sigma_classic`: σ = Δ₂ · sqrt(2 ln(1.25/δ)) / ε gives (ε, δ)-DP for ε < 1
  (Dwork & Roth, Theorem A.1), for users outside the zCDP accountant;
- :func:`laplace_scale`: b = Δ₁ / ε gives ε-DP;
- :func:`exponential_mechanism`: picks index i with probability ∝ exp(ε·score_i / (2Δ)),
  ε-DP and ε²/8-zCDP.

Every draw comes from the caller's ``numpy.random.Generator``. Post-processing (what is done
with released numbers only) costs no privacy.
"""

from __future__ import annotations

import math

import numpy as np

from datakiln.errors import InvalidArgumentError

__all__ = ["exponential_mechanism", "gaussian_mechanism", "gaussian_sigma", "gaussian_sigma_classic",
           "laplace_mechanism", "laplace_scale", "nonnegative_counts"]


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isnan(value):
        raise InvalidArgumentError(f"{name} must be a number > 0, got {value!r:.40}")
    return float(value)


def gaussian_sigma(sensitivity: float, rho: float) -> float:
    """Noise standard deviation for ρ-zCDP: ``sensitivity / sqrt(2 * rho)`` (0 when ρ is inf)."""
    sensitivity, rho = _positive("sensitivity", sensitivity), _positive("rho", rho)
    return 0.0 if math.isinf(rho) else sensitivity / math.sqrt(2 * rho)


def gaussian_sigma_classic(sensitivity: float, epsilon: float, delta: float) -> float:
    """The classic (ε, δ) calibration ``sensitivity * sqrt(2 ln(1.25/δ)) / ε`` (valid for ε < 1)."""
    sensitivity, epsilon = _positive("sensitivity", sensitivity), _positive("epsilon", epsilon)
    if not 0 < delta < 1:
        raise InvalidArgumentError(f"delta must be in (0, 1), got {delta!r:.40}")
    if epsilon >= 1:
        raise InvalidArgumentError(f"the classic Gaussian calibration holds for epsilon < 1 only, got "
                                   f"{epsilon!r}; use gaussian_sigma with the zCDP accountant instead")
    return sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon


def laplace_scale(sensitivity: float, epsilon: float) -> float:
    """Laplace scale for ε-DP: ``sensitivity / epsilon`` (0 when ε is inf)."""
    sensitivity, epsilon = _positive("sensitivity", sensitivity), _positive("epsilon", epsilon)
    return 0.0 if math.isinf(epsilon) else sensitivity / epsilon


def gaussian_mechanism(values: np.ndarray, sensitivity: float, rho: float,
                       rng: np.random.Generator) -> np.ndarray:
    """``values`` plus Gaussian noise of σ = :func:`gaussian_sigma` (``sensitivity``, ``rho``)."""
    values = np.asarray(values, dtype=np.float64)
    sigma = gaussian_sigma(sensitivity, rho)
    return values + rng.normal(0.0, sigma, size=values.shape) if sigma > 0 else values.copy()


def laplace_mechanism(values: np.ndarray, sensitivity: float, epsilon: float,
                      rng: np.random.Generator) -> np.ndarray:
    """``values`` plus Laplace noise of scale :func:`laplace_scale` (``sensitivity``, ``epsilon``)."""
    values = np.asarray(values, dtype=np.float64)
    scale = laplace_scale(sensitivity, epsilon)
    return values + rng.laplace(0.0, scale, size=values.shape) if scale > 0 else values.copy()


def exponential_mechanism(scores: np.ndarray, epsilon: float, sensitivity: float,
                          rng: np.random.Generator) -> int:
    """Index drawn with probability ∝ ``exp(epsilon * score / (2 * sensitivity))`` (argmax for ε = inf)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise InvalidArgumentError("the exponential mechanism needs at least one candidate")
    epsilon, sensitivity = _positive("epsilon", epsilon), _positive("sensitivity", sensitivity)
    if math.isinf(epsilon):
        return int(np.argmax(scores))
    logits = epsilon * scores / (2 * sensitivity)
    weights = np.exp(logits - logits.max())
    return int(rng.choice(scores.size, p=weights / weights.sum()))


def nonnegative_counts(noisy: np.ndarray, total: float) -> np.ndarray:
    """The noisy counts shifted down by one threshold and clipped at 0 so they sum to ``total``.

    Clipping alone gives every empty cell the positive half of its noise; subtracting the
    common threshold first ("norm-sub") keeps the released total. Pure post-processing.
    """
    noisy = np.asarray(noisy, dtype=np.float64).ravel()
    total = max(float(total), 0.0)
    if noisy.size == 0:
        return noisy
    if total == 0 or not (noisy > 0).any():
        return np.full(noisy.size, total / noisy.size)
    ordered = np.sort(noisy)[::-1]
    cumulative = np.cumsum(ordered)
    # threshold t with sum(max(noisy - t, 0)) == total: t = (cumulative[k] - total) / (k + 1)
    thresholds = (cumulative - total) / np.arange(1, noisy.size + 1)
    valid = ordered > thresholds
    k = int(np.nonzero(valid)[0].max())
    return np.clip(noisy - thresholds[k], 0.0, None)
