"""A small convolutional classifier trained on the real images, and the Fréchet distance.

Inception weights cannot be downloaded here, so image quality is measured in the feature
space of a classifier datakiln trains itself on the real training images (its 128-wide
pooled features). The image models early-stop on it; the evaluation
(:mod:`datakiln.evaluation.images`) trains an *independent* one (another seed and width) to
score class fidelity, so the model judged is not tuned to its judge. Values computed in
this space are not comparable to published Inception FIDs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from datakiln._optional import import_optional

__all__ = ["FeatureClassifier", "frechet_distance"]


def _network(torch: Any, channels: int, classes: int, width: int) -> Any:
    nn = torch.nn

    def block(cin: int, cout: int) -> list[Any]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    body = nn.Sequential(
        *block(channels, width),
        *block(width, width),
        nn.MaxPool2d(2),
        *block(width, 2 * width),
        *block(2 * width, 2 * width),
        nn.MaxPool2d(2),
        *block(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, 128),
        nn.ReLU(),
    )
    return nn.ModuleDict({"body": body, "head": nn.Linear(128, max(classes, 1))})


class FeatureClassifier:
    """A small CNN (5 convolutions, 128 pooled features) fitted on uint8 N×H×W×C images.

    Parameters
    ----------
    width : int
        Channels of the first convolutions (default 32; doubled twice).
    epochs : int
        Passes over the images (default 8), Adam at ``lr`` 2e-3 with a one-cycle schedule,
        batch 128 (fewer for small sets: 1/20 of the images, at least 16), random
        2-pixel translations (and horizontal flips for colour images).
    seed : int
        Initialisation and batch order.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    threads : int, optional
        Torch threads while fitting (default: the CPUs this process may use).
    """

    def __init__(
        self,
        *,
        width: int = 32,
        epochs: int = 8,
        lr: float = 2e-3,
        seed: int = 0,
        device: str = "auto",
        flips: bool | None = None,
        threads: int | None = None,
    ) -> None:
        self.threads = threads
        self.width, self.epochs, self.lr, self.seed, self.device, self.flips = (
            width,
            epochs,
            lr,
            seed,
            device,
            flips,
        )

    def fit(self, pixels: np.ndarray, codes: np.ndarray, classes: int) -> FeatureClassifier:
        """Train on ``pixels`` (N×H×W×C uint8) with labels ``codes`` (0..classes-1)."""
        from datakiln.synth.images._training import torch_threads

        with torch_threads(self.threads):
            return self._fit(pixels, codes, classes)

    def _fit(self, pixels: np.ndarray, codes: np.ndarray, classes: int) -> FeatureClassifier:
        from datakiln.synth.images._training import choose_device, seeded

        torch = import_optional("torch", extra="torch")
        self.device_ = choose_device(self.device)
        channels = pixels.shape[-1]
        flips = (channels == 3) if self.flips is None else self.flips
        with seeded(self.seed) as generator:
            self.net_ = _network(torch, channels, classes, self.width).to(self.device_)
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        batch = int(min(128, max(16, len(pixels) // 20)))  # small sets: more, smaller steps
        steps = self.epochs * max(1, -(-len(pixels) // batch))
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=steps)
        x_all = _to_tensor(torch, pixels)
        y_all = torch.from_numpy(np.asarray(codes, np.int64))
        rng = np.random.default_rng(self.seed)
        started = time.perf_counter()
        self.net_.train()
        for _ in range(self.epochs):
            order = rng.permutation(len(pixels))
            for start in range(0, len(order), batch):
                index = torch.from_numpy(order[start : start + batch])
                x = _jitter(torch, x_all[index], generator, flips).to(self.device_)
                y = y_all[index].to(self.device_)
                loss = torch.nn.functional.cross_entropy(self.net_["head"](self.net_["body"](x)), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
        self.net_.eval()
        self.seconds_ = time.perf_counter() - started
        self.classes_ = classes
        return self

    def _run(self, pixels: np.ndarray, part: str) -> np.ndarray:
        torch = import_optional("torch", extra="torch")
        outputs = []
        with torch.no_grad():
            for start in range(0, len(pixels), 512):
                x = _to_tensor(torch, pixels[start : start + 512]).to(self.device_)
                features = self.net_["body"](x)
                outputs.append(
                    (features if part == "features" else self.net_["head"](features)).cpu().numpy()
                )
        return np.concatenate(outputs) if outputs else np.zeros((0, 128), np.float32)

    def features(self, pixels: np.ndarray) -> np.ndarray:
        """128 pooled features per image (float32)."""
        return self._run(pixels, "features").astype(np.float64)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities per image (N × classes)."""
        logits = self._run(pixels, "logits")
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """The most likely class code per image."""
        return self._run(pixels, "logits").argmax(axis=1)

    def accuracy(self, pixels: np.ndarray, codes: np.ndarray) -> float:
        """Share of ``pixels`` predicted as ``codes``."""
        return float(np.mean(self.predict(pixels) == np.asarray(codes))) if len(codes) else float("nan")


def _to_tensor(torch: Any, pixels: np.ndarray) -> Any:
    x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float()
    return x.div_(127.5).sub_(1.0)


def _jitter(torch: Any, x: Any, generator: Any, flips: bool) -> Any:
    """Random translations of up to 2 pixels (zero padding) and, for colour, horizontal flips."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, [2, 2, 2, 2], value=-1.0)
    dy = torch.randint(0, 5, (n,), generator=generator)
    dx = torch.randint(0, 5, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None].expand(n, x.shape[1], h, w + 4)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :].expand(n, x.shape[1], h, w)
    out = out.gather(3, cols)
    if flips:
        flip = torch.rand(n, generator=generator) < 0.5
        out[flip] = out[flip].flip(3)
    return out


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a`` and ``b``
    (‖μa − μb‖² + tr(Σa + Σb − 2(ΣaΣb)^½)); tr((ΣaΣb)^½) is the sum of the square roots of
    ΣaΣb's eigenvalues (real and ≥ 0 for two covariance matrices; rounding noise clipped)."""
    mu = a.mean(axis=0) - b.mean(axis=0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eig = np.linalg.eigvals(sa @ sb)
    trace_root = float(np.sum(np.sqrt(np.clip(eig.real, 0, None))))
    return float(mu @ mu + np.trace(sa) + np.trace(sb) - 2 * trace_root)
