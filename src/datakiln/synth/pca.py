"""PCASynthesizer: a linear-Gaussian model (probabilistic PCA) on the transformed space.

The table is encoded as for the neural models (:mod:`datakiln.synth.neural._encoding`:
mode-specific normalisation of numbers, one-hots of categories); the matrix gets its mean
and the principal directions that explain ``variance`` of its total variance (or
``components`` of them); the rest is isotropic noise (Tipping & Bishop's probabilistic
PCA, closed form from one SVD). Sampling draws ``mean + W z + noise`` and decodes: each
one-hot span's category and mode by argmax. NumPy only (no torch): the fast baseline,
seconds on Adult. It keeps the linear structure of the encoded table only, so expect
weaker pair trends than the copula or the neural models.

>>> from datakiln.synth import PCASynthesizer
>>> PCASynthesizer().fit(table).sample(1000, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.synth.base import register
from datakiln.synth.neural._conditions import ConditionPlan
from datakiln.synth.neural.base import NeuralSynthesizer

__all__ = ["PCASynthesizer"]


@register
class PCASynthesizer(NeuralSynthesizer):
    """Probabilistic PCA on the encoded table.

    Parameters
    ----------
    components : int or None
        Principal directions kept (default None: as many as ``variance`` needs).
    variance : float
        Share of the encoded table's variance the kept directions explain (default 0.99).
    constraints, pii, text, max_rows, max_modes, max_categories, validation, seed :
        As for :class:`~datakiln.synth.neural.tvae.TVAE` (``validation`` default 0: nothing
        to stop early).
    warm_weight : float
        With ``fit(data, init=model)``: the weight of the init's mean and covariance in the
        mixture with this data's (default 0.5).
    """

    def __init__(self, *, components: int | None = None, variance: float = 0.99,
                 constraints: list[Any] | None = None, pii: str = "fake", text: str = "fake",
                 max_rows: int = 1_000_000, max_modes: int = 10, max_categories: int = 1000,
                 validation: float = 0.0, warm_weight: float = 0.5, seed: int = 0) -> None:
        self.components = components
        self.variance = variance
        self.constraints = constraints
        self.pii = pii
        self.text = text
        self.max_rows = max_rows
        self.max_modes = max_modes
        self.max_categories = max_categories
        self.validation = validation
        self.warm_weight = warm_weight
        self.seed = seed

    def _learn(self, matrix: np.ndarray, reference: np.ndarray | None, rng: np.random.Generator,
               init: NeuralSynthesizer | None) -> None:
        if self.components is not None and (not isinstance(self.components, int) or self.components < 1):
            raise InvalidArgumentError(f"components must be None or a whole number >= 1, got "
                                       f"{self.components!r}")
        if not isinstance(self.variance, (int, float)) or not 0 < self.variance <= 1:
            raise InvalidArgumentError(f"variance must be a share in (0, 1], got {self.variance!r}")
        x = matrix.astype(np.float64)
        mean = x.mean(axis=0)
        covariance = np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1]) if len(x) > 1 else \
            np.zeros((x.shape[1], x.shape[1]))
        if init is not None:  # warm start: a mixture of the init's moments (mapped) and these
            w = float(self.warm_weight)
            old_at, new_at = self.encoder_.index_map(init.encoder_)
            old_mean = mean.copy()
            old_mean[new_at] = init.mean_[old_at]  # type: ignore[attr-defined]
            old_cov = covariance.copy()
            loadings = init.loadings_[old_at]  # type: ignore[attr-defined]
            old_cov[np.ix_(new_at, new_at)] = loadings @ loadings.T + init.noise_ * np.eye(len(old_at))  # type: ignore[attr-defined]
            mixed = w * old_mean + (1 - w) * mean
            covariance = (w * (old_cov + np.outer(old_mean, old_mean))
                          + (1 - w) * (covariance + np.outer(mean, mean)) - np.outer(mixed, mixed))
            mean = mixed
        eigen, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
        eigen, vectors = np.clip(eigen[::-1], 0, None), vectors[:, ::-1]
        total = eigen.sum()
        if self.components is not None:
            k = min(int(self.components), len(eigen))
        else:
            share = np.cumsum(eigen) / total if total > 0 else np.ones(len(eigen))
            k = int(np.searchsorted(share, float(self.variance) - 1e-12) + 1)
            k = min(k, len(eigen))
        noise = float(eigen[k:].mean()) if k < len(eigen) else 0.0
        scale = np.sqrt(np.maximum(eigen[:k] - noise, 0.0))
        self.mean_ = mean
        self.loadings_ = vectors[:, :k] * scale  # width × k
        self.noise_ = noise
        self.history_ = [{"components": k, "explained": float(eigen[:k].sum() / total) if total > 0 else 1.0}]
        if reference is not None:
            self.history_[0]["fidelity"] = self.fidelity(reference, rng)

    def _generate(self, m: int, rng: np.random.Generator, plan: ConditionPlan) -> np.ndarray:
        z = rng.standard_normal((m, self.loadings_.shape[1]))
        x = self.mean_ + z @ self.loadings_.T
        if self.noise_ > 0:
            x += rng.standard_normal(x.shape) * np.sqrt(self.noise_)
        return x

    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return ({"noise": self.noise_, "history": self.history_},
                {"mean": self.mean_, "loadings": self.loadings_})

    def _load_model_state(self, state: Any, arrays: dict[str, np.ndarray]) -> None:
        width = self.encoder_.width
        noise = state.get("noise") if isinstance(state, dict) else None
        if not isinstance(noise, (int, float)) or isinstance(noise, bool) or not 0 <= noise < float("inf"):
            raise ModelFormatError("state field 'model.noise' must be a variance >= 0")
        mean, loadings = arrays.get("mean"), arrays.get("loadings")
        if mean is None or mean.shape != (width,):
            raise ModelFormatError(f"array 'mean' must have shape ({width},), got "
                                   f"{None if mean is None else mean.shape}")
        if loadings is None or loadings.ndim != 2 or loadings.shape[0] != width or loadings.shape[1] < 1:
            raise ModelFormatError(f"array 'loadings' must have shape ({width}, components), got "
                                   f"{None if loadings is None else loadings.shape}")
        self.mean_, self.loadings_, self.noise_ = mean.astype(np.float64), loadings.astype(np.float64), \
            float(state["noise"])
        self.history_ = state.get("history")
