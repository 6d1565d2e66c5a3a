"""``ConditionalGAN``: a ResNet-style generator against a DCGAN-style discriminator.

- **Generator**: noise (``latent_dim``) → linear → 4 × 4 map → three residual up-blocks
  (nearest upsampling, two 3 × 3 convolutions, class-conditional batch norm: a gain and
  bias per class) → batch norm, ReLU, 3 × 3 convolution, tanh. Channels ``4w, 4w, 2w, w``
  for ``width`` w.
- **Discriminator**: the DCGAN-style "standard CNN" of SNGAN (Miyato et al. 2018): 3 × 3
  and stride-2 4 × 4 convolutions (``w → 8w`` channels), leaky ReLU 0.1, spectral norm
  on every layer, global sum pooling, a linear output plus a **projection** term
  ``⟨embed(y), h⟩`` (Miyato & Koyama 2018) for the class, and an auxiliary class head
  (AC-GAN, Odena et al. 2017; weight ``aux_weight``) trained on real images and asked of
  the generator's: class fidelity comes within a few hundred steps instead of thousands.
- **Loss**: hinge; Adam (lr 2e-4, betas 0.5 / 0.999), one discriminator step per
  generator step.
- **DiffAugment** (:mod:`._diffaugment`) on real and fake images before the discriminator.
- **EMA**: images are drawn by an exponential moving average of the generator's weights
  (``ema`` 0.999, warmed up as ``min(ema, (1 + t) / (10 + t))`` at step t), which is what
  is saved.
"""

from __future__ import annotations

import copy
from typing import Any

from datakiln.synth.base import register
from datakiln.synth.images._diffaugment import diff_augment
from datakiln.synth.images.base import ImageSynthesizer

__all__ = ["ConditionalGAN"]


def _networks(
    torch: Any, channels: int, classes: int, size: tuple[int, int], latent: int, w: int
) -> tuple[Any, Any]:
    nn = torch.nn
    sn = nn.utils.parametrizations.spectral_norm
    base = (size[0] // 8, size[1] // 8)

    class CondBN(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.bn = nn.BatchNorm2d(c, affine=False)
            self.gain = nn.Embedding(classes, c)
            self.bias = nn.Embedding(classes, c)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

        def forward(self, x: Any, y: Any) -> Any:
            return self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]

    class UpBlock(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.bn1, self.bn2 = CondBN(cin), CondBN(cout)
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
            self.skip = nn.Conv2d(cin, cout, 1)

        def forward(self, x: Any, y: Any) -> Any:
            h = nn.functional.interpolate(torch.relu(self.bn1(x, y)), scale_factor=2)
            h = self.conv2(torch.relu(self.bn2(self.conv1(h), y)))
            return h + self.skip(nn.functional.interpolate(x, scale_factor=2))

    class Generator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.top = 4 * w
            self.linear = nn.Linear(latent, self.top * base[0] * base[1])
            self.blocks = nn.ModuleList([UpBlock(4 * w, 4 * w), UpBlock(4 * w, 2 * w), UpBlock(2 * w, w)])
            self.bn = nn.BatchNorm2d(w)
            self.out = nn.Conv2d(w, channels, 3, padding=1)

        def forward(self, z: Any, y: Any) -> Any:
            h = self.linear(z).view(len(z), self.top, *base)
            for block in self.blocks:
                h = block(h, y)
            return torch.tanh(self.out(torch.relu(self.bn(h))))

    class Discriminator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            spec = [
                (channels, w, 3, 1),
                (w, w, 4, 2),
                (w, 2 * w, 3, 1),
                (2 * w, 2 * w, 4, 2),
                (2 * w, 4 * w, 3, 1),
                (4 * w, 4 * w, 4, 2),
                (4 * w, 8 * w, 3, 1),
            ]
            self.convs = nn.ModuleList([sn(nn.Conv2d(a, b, k, s, padding=1)) for a, b, k, s in spec])
            self.linear = sn(nn.Linear(8 * w, 1))
            self.embed = sn(nn.Embedding(classes, 8 * w))
            # the class head sees layer-normalised features: spectral norm leaves them ~0.01 wide
            self.classify = nn.Sequential(nn.LayerNorm(8 * w), nn.Linear(8 * w, classes))

        def forward(self, x: Any, y: Any) -> tuple[Any, Any]:
            h = x
            for conv in self.convs:
                h = nn.functional.leaky_relu(conv(h), 0.1)
            h = h.sum(dim=(2, 3))
            return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1), self.classify(h)

    return Generator(), Discriminator()


@register
class ConditionalGAN(ImageSynthesizer):
    """Class-conditional GAN for small images (8–128 pixels a side, grey or colour).

    Parameters
    ----------
    epochs : int
        Passes over the training images (default 50).
    batch_size : int
        Images per step (default 64).
    lr : float
        Adam learning rate of both networks (default 2e-4).
    latent_dim : int
        Noise dimensions (default 128).
    width : int
        Base channel count w (default 32; SNGAN's CIFAR networks use 128 — slow on a CPU).
    ema : float
        Decay of the generator's weight average (default 0.999; 0 turns it off).
    diffaugment : str
        DiffAugment policy (default ``"color,translation,cutout"``; ``""`` off).
    image_size : int or (height, width), optional
        Resize the training images first (default: their own size).
    seed : int
        Initialisation, batch order and noise (default 0).
    device : str
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"`` or ``"cuda"``.
    threads : int, optional
        Torch threads (default: the CPUs this process may use).
    aux_weight : float
        Weight of the auxiliary class loss (default 1.0; 0 leaves the projection alone).
    early_stopping, validation, eval_every, patience, scorer_epochs, checkpoint_every
        See :mod:`datakiln.synth.images.base` (default: early stopping on, 10% held out,
        measured every 5 epochs, patience 3, a classifier of 6 epochs; checkpoints every
        5 epochs when ``fit(checkpoint=...)`` is given).

    Examples
    --------
    >>> gan = ConditionalGAN(epochs=30).fit(datakiln.read_images("cifar10/train"))  # doctest: +SKIP
    >>> cats = gan.sample(100, conditions={"label": "cat"}, seed=0)                  # doctest: +SKIP
    """

    _nets = ("generator", "discriminator", "ema")
    _sampler_net = "ema"

    def __init__(
        self,
        *,
        epochs: int = 50,
        batch_size: int = 64,
        lr: float = 2e-4,
        latent_dim: int = 128,
        width: int = 32,
        ema: float = 0.999,
        diffaugment: str = "color,translation,cutout",
        image_size: int | list[int] | None = None,
        seed: int = 0,
        device: str = "auto",
        threads: int | None = None,
        early_stopping: bool = True,
        validation: float = 0.1,
        eval_every: int = 5,
        patience: int = 3,
        scorer_epochs: int = 6,
        checkpoint_every: int = 5,
        aux_weight: float = 1.0,
    ) -> None:
        self.epochs, self.batch_size, self.lr, self.latent_dim, self.width = (
            epochs,
            batch_size,
            lr,
            latent_dim,
            width,
        )
        self.ema, self.diffaugment, self.image_size, self.seed = ema, diffaugment, image_size, seed
        self.device, self.threads, self.early_stopping, self.validation = (
            device,
            threads,
            early_stopping,
            validation,
        )
        self.eval_every, self.patience, self.scorer_epochs = eval_every, patience, scorer_epochs
        self.checkpoint_every, self.aux_weight = checkpoint_every, aux_weight

    def _build(self, torch: Any) -> dict[str, Any]:
        size = (self.height_ + self.pad_[0], self.width_ + self.pad_[1])
        g, d = _networks(torch, self.channels_, len(self.classes_), size, self.latent_dim, self.width)
        ema = copy.deepcopy(g)
        for p in ema.parameters():
            p.requires_grad_(False)
        return {"generator": g, "discriminator": d, "ema": ema}

    def _make_optimizers(self, torch: Any) -> dict[str, Any]:
        return {
            name: torch.optim.Adam(self.nets_[name].parameters(), lr=self.lr, betas=(0.5, 0.999))
            for name in ("generator", "discriminator")
        }

    def _step(self, torch: Any, x: Any, y: Any, generator: Any) -> dict[str, float]:
        g, d, ema = self.nets_["generator"], self.nets_["discriminator"], self.nets_["ema"]
        opt_g, opt_d = self.optimizers_["generator"], self.optimizers_["discriminator"]
        policy = self.diffaugment

        def aug(images: Any) -> Any:
            return diff_augment(images, generator, policy) if policy else images

        n = len(x)
        z = torch.randn((n, self.latent_dim), generator=generator, device=x.device)
        fake_y = torch.randint(0, len(self.classes_), (n,), generator=generator, device=x.device)
        with torch.no_grad():
            fake = g(z, fake_y)
        cross_entropy = torch.nn.functional.cross_entropy
        score_real, logits_real = d(aug(x), y)
        score_fake, _ = d(aug(fake), fake_y)
        loss_real, loss_fake = torch.relu(1.0 - score_real).mean(), torch.relu(1.0 + score_fake).mean()
        loss_class = cross_entropy(logits_real, y) if self.aux_weight else torch.zeros(())
        opt_d.zero_grad(set_to_none=True)
        (loss_real + loss_fake + self.aux_weight * loss_class).backward()
        opt_d.step()

        z = torch.randn((n, self.latent_dim), generator=generator, device=x.device)
        fake_y = torch.randint(0, len(self.classes_), (n,), generator=generator, device=x.device)
        score, logits = d(aug(g(z, fake_y)), fake_y)
        loss_g = -score.mean()
        loss_g_class = cross_entropy(logits, fake_y) if self.aux_weight else torch.zeros(())
        opt_g.zero_grad(set_to_none=True)
        (loss_g + self.aux_weight * loss_g_class).backward()
        opt_g.step()
        with torch.no_grad():
            step = float(next(iter(opt_g.state.values()))["step"])
            decay = min(self.ema, (1.0 + step) / (10.0 + step))  # warm-up: short fits are not all init
            for p_ema, p in zip(ema.parameters(), g.parameters(), strict=True):
                p_ema.lerp_(p, 1.0 - decay)
            for b_ema, b in zip(ema.buffers(), g.buffers(), strict=True):
                b_ema.copy_(b)
        return {
            "d_real": float(loss_real.detach()),
            "d_fake": float(loss_fake.detach()),
            "g": float(loss_g.detach()),
            "d_class": float(loss_class.detach()),
            "g_class": float(loss_g_class.detach()),
        }

    def _draw(self, torch: Any, z: Any, y: Any) -> Any:
        return self.nets_["ema"](z, y)
