"""Differentiable augmentation for data-efficient GAN training (DiffAugment, Zhao et al. 2020).

The same random colour, translation and cutout are applied to real and generated images
before the discriminator sees them, in a way gradients flow through, so the discriminator
cannot memorise a small training set (10,000 images) and the generator is not taught the
augmentation. Written here (a few tensor operations) with an explicit ``torch.Generator``
so a seeded fit is reproducible. Images are N×C×H×W tensors in [-1, 1].
"""

from __future__ import annotations

from typing import Any

__all__ = ["diff_augment"]


def _rand(torch: Any, shape: tuple[int, ...], x: Any, generator: Any) -> Any:
    return torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)


def _colour(torch: Any, x: Any, g: Any) -> Any:
    n = x.shape[0]
    x = x + (_rand(torch, (n, 1, 1, 1), x, g) - 0.5)
    if x.shape[1] == 3:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_rand(torch, (n, 1, 1, 1), x, g) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(torch, (n, 1, 1, 1), x, g) + 0.5) + mean


def _translation(torch: Any, x: Any, g: Any, ratio: float = 0.125) -> Any:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), generator=g, device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=g, device=x.device)
    yy, xx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    yy = torch.clamp(yy[None] + dy + 1, 0, h + 1)
    xx = torch.clamp(xx[None] + dx + 1, 0, w + 1)
    padded = torch.nn.functional.pad(x, [1, 1, 1, 1])
    index = (yy * (w + 2) + xx).reshape(n, 1, h * w).expand(-1, x.shape[1], -1)
    return padded.reshape(n, x.shape[1], -1).gather(2, index).reshape(x.shape)


def _cutout(torch: Any, x: Any, g: Any, ratio: float = 0.5) -> Any:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=g, device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=g, device=x.device)
    yy = torch.arange(h, device=x.device)[None, :, None]
    xx = torch.arange(w, device=x.device)[None, None, :]
    inside = (
        ((yy - cy + ch // 2).clamp(min=-1) >= 0)
        & (yy - cy + ch // 2 < ch)
        & (xx - cx + cw // 2 >= 0)
        & (xx - cx + cw // 2 < cw)
    )
    return x * (~inside).unsqueeze(1).to(x.dtype)


def diff_augment(x: Any, generator: Any, policy: str = "color,translation,cutout") -> Any:
    """``x`` (N×C×H×W) with the ``policy``'s augmentations, each drawn per image."""
    import torch

    for name in policy.split(","):
        name = name.strip()
        if name == "color":
            x = _colour(torch, x, generator)
        elif name == "translation":
            x = _translation(torch, x, generator)
        elif name == "cutout":
            x = _cutout(torch, x, generator)
        elif name:
            raise ValueError(f"unknown DiffAugment policy part {name!r} (color, translation, cutout)")
    return x
