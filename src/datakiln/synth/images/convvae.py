"""``ConvVAE``: a class-conditional convolutional variational autoencoder.

Encoder: three stride-2 convolutions (``w, 2w, 4w`` channels, batch norm, leaky ReLU) →
flattened, joined with the class's one-hot vector → mean and log-variance of a
``latent_dim`` Gaussian. Decoder: latent + one-hot → linear → ``4w`` × (H/8) × (W/8) →
three stride-2 transposed convolutions → tanh. Loss per image: the sum of squared pixel
errors (pixels in [-1, 1], scaled by ``1 / (2 σ²)`` with σ = ``sigma``) plus the KL term
(β = 1); Adam at ``lr``. Sampling decodes N(0, I) noise with the requested class. Expect
blurrier images than the GAN's — the Gaussian likelihood averages over details.
"""

from __future__ import annotations

from typing import Any

from datakiln.synth.base import register
from datakiln.synth.images.base import ImageSynthesizer

__all__ = ["ConvVAE"]


def _networks(
    torch: Any, channels: int, classes: int, size: tuple[int, int], latent: int, w: int
) -> tuple[Any, Any]:
    nn = torch.nn
    base = (size[0] // 8, size[1] // 8)
    flat = 4 * w * base[0] * base[1]

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[Any] = []
            for cin, cout in ((channels, w), (w, 2 * w), (2 * w, 4 * w)):
                layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
            self.body = nn.Sequential(*layers, nn.Flatten())
            self.head = nn.Linear(flat + classes, 2 * latent)

        def forward(self, x: Any, y: Any) -> tuple[Any, Any]:
            onehot = nn.functional.one_hot(y, classes).float()
            mean, logvar = self.head(torch.cat([self.body(x), onehot], 1)).chunk(2, dim=1)
            return mean, logvar.clamp(-10, 10)

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(latent + classes, flat)
            layers: list[Any] = []
            for cin, cout in ((4 * w, 2 * w), (2 * w, w)):
                layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
            self.body = nn.Sequential(*layers, nn.ConvTranspose2d(w, channels, 4, 2, 1))

        def forward(self, z: Any, y: Any) -> Any:
            onehot = nn.functional.one_hot(y, classes).float()
            h = torch.relu(self.linear(torch.cat([z, onehot], 1))).view(len(z), 4 * w, *base)
            return torch.tanh(self.body(h))

    return Encoder(), Decoder()


@register
class ConvVAE(ImageSynthesizer):
    """Class-conditional convolutional VAE for small images (8–128 pixels a side).

    Parameters
    ----------
    epochs : int
        Passes over the training images (default 30).
    batch_size : int
        Images per step (default 64).
    lr : float
        Adam learning rate (default 1e-3).
    latent_dim : int
        Latent dimensions (default 64).
    width : int
        Base channel count w (default 32).
    sigma : float
        Pixel noise scale of the Gaussian likelihood, in [-1, 1] pixel units (default 0.1:
        sharper than 1, still smooth).
    image_size, seed, device, threads, early_stopping, validation, eval_every, patience,
    scorer_epochs, checkpoint_every
        As for :class:`~datakiln.synth.images.ConditionalGAN`.
    """

    _nets = ("encoder", "decoder")
    _sampler_net = "decoder"

    def __init__(
        self,
        *,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        latent_dim: int = 16,
        width: int = 32,
        sigma: float = 0.3,
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
    ) -> None:
        self.epochs, self.batch_size, self.lr, self.latent_dim, self.width = (
            epochs,
            batch_size,
            lr,
            latent_dim,
            width,
        )
        self.sigma, self.image_size, self.seed, self.device, self.threads = (
            sigma,
            image_size,
            seed,
            device,
            threads,
        )
        self.early_stopping, self.validation, self.eval_every = early_stopping, validation, eval_every
        self.patience, self.scorer_epochs, self.checkpoint_every = patience, scorer_epochs, checkpoint_every

    def _build(self, torch: Any) -> dict[str, Any]:
        size = (self.height_ + self.pad_[0], self.width_ + self.pad_[1])
        encoder, decoder = _networks(
            torch, self.channels_, len(self.classes_), size, self.latent_dim, self.width
        )
        return {"encoder": encoder, "decoder": decoder}

    def _make_optimizers(self, torch: Any) -> dict[str, Any]:
        params = list(self.nets_["encoder"].parameters()) + list(self.nets_["decoder"].parameters())
        return {"vae": torch.optim.Adam(params, lr=self.lr)}

    def _step(self, torch: Any, x: Any, y: Any, generator: Any) -> dict[str, float]:
        mean, logvar = self.nets_["encoder"](x, y)
        eps = torch.randn(mean.shape, generator=generator, device=x.device)
        recon = self.nets_["decoder"](mean + eps * torch.exp(0.5 * logvar), y)
        rec = ((recon - x) ** 2).flatten(1).sum(1).mean() / (2 * self.sigma**2)
        kl = (-0.5 * (1 + logvar - mean**2 - logvar.exp()).sum(1)).mean()
        optimizer = self.optimizers_["vae"]
        optimizer.zero_grad(set_to_none=True)
        (rec + kl).backward()
        optimizer.step()
        return {"reconstruction": float(rec.detach()), "kl": float(kl.detach())}

    def _draw(self, torch: Any, z: Any, y: Any) -> Any:
        return self.nets_["decoder"](z, y)
