"""CTGAN: a conditional Wasserstein GAN over the mode-specific normalised table (Xu et al., 2019).

As in the paper and SDV's CTGAN (so results compare at equal epochs): a residual generator
(256-256, batch norm) fed a 128-d noise vector plus the *conditional vector*, a PacGAN
discriminator (``pac`` = 10 rows judged together, 256-256, LeakyReLU 0.2, dropout 0.5),
WGAN-GP loss (gradient penalty 10), Gumbel-softmax (τ = 0.2) one-hots, Adam (2e-4,
betas 0.5/0.9), batches of 500, 300 epochs.

*Training-by-sampling*: each step picks a categorical column per row at random, a category
of it with probability ∝ log(frequency + 1), puts it in the conditional vector and draws
real rows having that category; the generator is also penalised by the cross-entropy of
its output for the chosen column. All of this is NumPy arrays indexed in one go (rows of
each category precomputed as slices of one argsort per column), not a Python loop per
row, which with the vectorised transform and losses is where the speed comes from.

Sampling: without conditions the conditional vector is drawn from the real category
frequencies; a categorical condition is put into the vector for every row (and checked
exactly by :mod:`._conditions`, with bounded rejection).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datakiln.errors import InvalidArgumentError
from datakiln.synth.base import register
from datakiln.synth.neural._conditions import ConditionPlan
from datakiln.synth.neural._torch import TorchSynthesizer
from datakiln.synth.neural._training import torch

__all__ = ["CTGAN"]


def _networks(width: int, cond: int, embedding: int, generator: tuple[int, ...],
              discriminator: tuple[int, ...], pac: int) -> dict[str, Any]:
    nn = torch().nn

    class Residual(nn.Module):
        def __init__(self, size: int, out: int) -> None:
            super().__init__()
            self.fc = nn.Linear(size, out)
            self.bn = nn.BatchNorm1d(out)
            self.relu = nn.ReLU()

        def forward(self, x: Any) -> Any:
            return torch().cat([self.relu(self.bn(self.fc(x))), x], dim=1)

    layers, size = [], embedding + cond
    for h in generator:
        layers.append(Residual(size, h))
        size += h
    layers.append(nn.Linear(size, width))
    disc, size = [], (width + cond) * pac
    for h in discriminator:
        disc += [nn.Linear(size, h), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
        size = h
    disc.append(nn.Linear(size, 1))
    return {"generator": nn.Sequential(*layers), "discriminator": nn.Sequential(*disc)}


class _CondSampler:
    """The conditional vector and training-by-sampling, as array operations."""

    def __init__(self, codes: np.ndarray, sizes: list[int]) -> None:
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.width = int(self.sizes.sum())
        columns, widest = len(sizes), max(sizes, default=1)
        counts = np.zeros((columns, widest))
        self.order = np.empty((columns, len(codes)), dtype=np.int64)
        self.starts = np.zeros((columns, widest), dtype=np.int64)
        for j in range(columns):
            counts[j, :sizes[j]] = np.bincount(codes[:, j], minlength=sizes[j])[:sizes[j]]
            self.order[j] = np.argsort(codes[:, j], kind="stable")
            self.starts[j] = np.concatenate([[0], np.cumsum(counts[j])[:-1]])
        self.counts = counts.astype(np.int64)
        log_freq = np.where(counts > 0, np.log(counts + 1), 0.0)
        self.train_cum = np.cumsum(log_freq / np.maximum(log_freq.sum(axis=1, keepdims=True), 1e-12), axis=1)
        self.real_cum = np.cumsum(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1), axis=1)

    def draw(self, n: int, rng: np.random.Generator, cumulative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(column, category) per row: a column uniformly, a category by ``cumulative``."""
        column = rng.integers(0, len(self.sizes), n)
        u = rng.random(n)
        category = (cumulative[column] < u[:, None]).sum(axis=1)
        return column, np.minimum(category, self.sizes[column] - 1)

    def vector(self, column: np.ndarray, category: np.ndarray) -> np.ndarray:
        out = np.zeros((len(column), self.width), dtype=np.float32)
        out[np.arange(len(column)), self.offsets[column] + category] = 1.0
        return out

    def rows(self, column: np.ndarray, category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A real row having each (column, category)."""
        position = self.starts[column, category] + (rng.random(len(column)) * self.counts[column, category]
                                                    ).astype(np.int64)
        return self.order[column, position]


@register
class CTGAN(TorchSynthesizer):
    """Conditional tabular GAN (WGAN-GP, PacGAN, training-by-sampling).

    Parameters
    ----------
    epochs : int
        Passes over the training rows (default 300, SDV's).
    batch_size : int
        Rows per step, a multiple of ``pac`` (default 500).
    embedding : int
        Size of the generator's noise input (default 128).
    generator, discriminator : tuple of int
        Hidden widths (default (256, 256) each).
    generator_lr, discriminator_lr : float
        Adam step sizes (default 2e-4 each); weight decay 1e-6 both.
    discriminator_steps : int
        Discriminator updates per generator update (default 1).
    pac : int
        Rows the discriminator judges together (PacGAN; default 10).
    gradient_penalty : float
        Weight of the WGAN-GP penalty (default 10).
    patience, check_every, validation, checkpoint, constraints, pii, text, max_rows, max_modes,
    max_categories, device, threads, seed, verbose :
        As for :class:`~datakiln.synth.neural.tvae.TVAE`.
    """

    def __init__(self, *, epochs: int = 300, batch_size: int = 500, embedding: int = 128,
                 generator: tuple[int, ...] = (256, 256), discriminator: tuple[int, ...] = (256, 256),
                 generator_lr: float = 2e-4, discriminator_lr: float = 2e-4, discriminator_steps: int = 1,
                 pac: int = 10, gradient_penalty: float = 10.0, patience: int | None = None,
                 check_every: int = 10, validation: float = 0.1, checkpoint: str | None = None,
                 constraints: list[Any] | None = None, pii: str = "fake", text: str = "fake",
                 max_rows: int = 1_000_000, max_modes: int = 10, max_categories: int = 1000,
                 device: str = "auto", threads: int | None = None, seed: int = 0,
                 verbose: bool = False) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.embedding = embedding
        self.generator = generator
        self.discriminator = discriminator
        self.generator_lr = generator_lr
        self.discriminator_lr = discriminator_lr
        self.discriminator_steps = discriminator_steps
        self.pac = pac
        self.gradient_penalty = gradient_penalty
        self.patience = patience
        self.check_every = check_every
        self.validation = validation
        self.checkpoint = checkpoint
        self.constraints = constraints
        self.pii = pii
        self.text = text
        self.max_rows = max_rows
        self.max_modes = max_modes
        self.max_categories = max_categories
        self.device = device
        self.threads = threads
        self.seed = seed
        self.verbose = verbose

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["generator"] = list(params["generator"])
        params["discriminator"] = list(params["discriminator"])
        return params

    # -- the conditional vector ---------------------------------------------------------------
    def _cond_spans(self) -> list[int]:
        """Indices (among the softmax spans) of the categorical columns' spans."""
        categorical = {s.column for s in self.encoder_.softmax_spans("categorical")}
        return [j for j, s in enumerate(self._layout.spans) if s.column in categorical]

    def _cond_width(self) -> int:
        return sum(self._layout.spans[j].width for j in self._cond_spans())

    def _build(self) -> dict[str, Any]:
        pac = int(self.pac)
        if pac < 1 or int(self.batch_size) % pac:
            raise InvalidArgumentError(f"batch_size ({self.batch_size}) must be a multiple of pac ({pac})")
        self.__dict__.pop("_gauss", None)  # the gate follows this encoder
        modules = _networks(self.encoder_.width, self._cond_width(), int(self.embedding),
                            tuple(int(h) for h in self.generator),
                            tuple(int(h) for h in self.discriminator), pac)
        return {k: m.to(self._device) for k, m in modules.items()}

    def _layout_dims(self) -> dict[str, dict[int, str]]:
        dims: dict[str, dict[int, str]] = {}
        hidden = list(self.generator)
        for i in range(len(hidden)):
            dims[f"generator.{i}.fc.weight"] = {1: f"generator_in.{i}"}
        dims[f"generator.{len(hidden)}.weight"] = {0: "data", 1: f"generator_in.{len(hidden)}"}
        dims[f"generator.{len(hidden)}.bias"] = {0: "data"}
        dims["discriminator.0.weight"] = {1: "discriminator_in"}
        return dims

    def _dim_map(self, what: str, init: Any) -> tuple[np.ndarray, np.ndarray]:
        if what == "data":
            return super()._dim_map(what, init)
        cond_old, cond_new = self._cond_map(init)
        if what == "discriminator_in":  # pac blocks of [data | cond]
            data_old, data_new = self.encoder_.index_map(init.encoder_)
            w_old, w_new = init.encoder_.width + init._cond_width(), self.encoder_.width + self._cond_width()
            block_old = np.concatenate([data_old, init.encoder_.width + cond_old])
            block_new = np.concatenate([data_new, self.encoder_.width + cond_new])
            pac = int(self.pac)
            return (np.concatenate([block_old + k * w_old for k in range(pac)]),
                    np.concatenate([block_new + k * w_new for k in range(pac)]))
        layer = int(what.split(".")[1])  # input of residual layer i: [h_{i-1} .. h_0 | noise | cond]
        emb = int(self.embedding)
        hidden = sum(int(h) for h in list(self.generator)[:layer])
        fixed = np.arange(hidden + emb)
        return (np.concatenate([fixed, hidden + emb + cond_old]),
                np.concatenate([fixed, hidden + emb + cond_new]))

    def _cond_map(self, init: Any) -> tuple[np.ndarray, np.ndarray]:
        """(old, new) positions in the conditional vector, from the data layout's index map."""
        old_at, new_at = self.encoder_.index_map(init.encoder_)
        pairs = dict(zip(old_at.tolist(), new_at.tolist()))
        old_pos, new_pos = [], []
        o_off = n_off = 0
        for oj, nj in zip(init._cond_spans(), self._cond_spans()):
            old_span, new_span = init._layout.spans[oj], self._layout.spans[nj]
            for k in range(old_span.width):
                target = pairs.get(old_span.start + k)
                if target is not None:
                    old_pos.append(o_off + k)
                    new_pos.append(n_off + target - new_span.start)
            o_off += old_span.width
            n_off += new_span.width
        return np.asarray(old_pos, dtype=np.int64), np.asarray(new_pos, dtype=np.int64)

    # -- training ----------------------------------------------------------------------------
    def _setup_training(self, data: Any, codes: np.ndarray,
                        rng: np.random.Generator) -> tuple[dict[str, Any], Any]:
        t = torch()
        generator, discriminator = self._modules["generator"], self._modules["discriminator"]
        opt_g = t.optim.Adam(generator.parameters(), lr=float(self.generator_lr), betas=(0.5, 0.9),
                             weight_decay=1e-6)
        opt_d = t.optim.Adam(discriminator.parameters(), lr=float(self.discriminator_lr), betas=(0.5, 0.9),
                             weight_decay=1e-6)
        spans = self._cond_spans()
        sampler = _CondSampler(codes[:, spans], [self._layout.spans[j].width for j in spans])
        self._sampler_counts = sampler.counts
        which = t.as_tensor(spans, dtype=t.long, device=self._device)
        layout, device = self._layout, self._device
        n, pac = len(data), int(self.pac)
        batch = max(min(int(self.batch_size), n) // pac * pac, pac)
        steps = max(n // batch, 1)
        emb, lam = int(self.embedding), float(self.gradient_penalty)

        def conditions(size: int) -> tuple[Any, Any, Any, np.ndarray, np.ndarray]:
            if not spans:
                return None, None, None, np.zeros(0, np.int64), rng.integers(0, n, size)
            column, category = sampler.draw(size, rng, sampler.train_cum)
            real = sampler.rows(column, category, rng)
            cond = t.as_tensor(sampler.vector(column, category), device=device)
            return (cond, t.as_tensor(column, device=device), t.as_tensor(category, device=device), column,
                    real)

        def fake_rows(size: int, cond: Any) -> tuple[Any, Any]:
            noise = t.randn(size, emb, device=device)
            raw = generator(noise if cond is None else t.cat([noise, cond], dim=1))
            return raw, self._gate(layout.activate(raw, tau=0.2))

        def judge(rows: Any, cond: Any) -> Any:
            x = rows if cond is None else t.cat([rows, cond], dim=1)
            return discriminator(x.reshape(-1, x.shape[1] * pac))

        def penalty(real: Any, fake: Any) -> Any:
            alpha = t.rand(len(real) // pac, 1, 1, device=device)
            alpha = alpha.expand(-1, pac, real.shape[1]).reshape(real.shape)
            mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
            score = discriminator(mixed.reshape(-1, mixed.shape[1] * pac))
            grad = t.autograd.grad(score.sum(), mixed, create_graph=True)[0]
            return ((grad.reshape(-1, pac * real.shape[1]).norm(2, dim=1) - 1) ** 2).mean() * lam

        def epoch(index: int) -> dict[str, float]:
            totals = t.zeros(2, device=device)
            for _ in range(steps):
                for _ in range(int(self.discriminator_steps)):
                    cond, _, _, _, real_rows = conditions(batch)
                    real = data[t.as_tensor(real_rows, device=device)]
                    with t.no_grad():  # the discriminator step needs no generator graph
                        _, fake = fake_rows(batch, cond)
                    real_in = real if cond is None else t.cat([real, cond], dim=1)
                    fake_in = fake if cond is None else t.cat([fake, cond], dim=1)
                    loss_d = -(judge(real, cond).mean() - judge(fake, cond).mean())
                    gp = penalty(real_in, fake_in)
                    opt_d.zero_grad(set_to_none=True)
                    (loss_d + gp).backward()
                    opt_d.step()
                cond, column, category, _, _ = conditions(batch)
                raw, fake = fake_rows(batch, cond)
                loss_g = -judge(fake, cond).mean()
                if cond is not None:
                    log_p = t.log_softmax(layout.logits(raw, which), dim=-1)  # rows × cond spans × widest
                    chosen = log_p[t.arange(batch, device=device), column, category]
                    loss_g = loss_g - chosen.mean()
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                totals += t.stack([loss_g.detach(), loss_d.detach()])
            mean = (totals / steps).tolist()
            return {"generator": mean[0], "discriminator": mean[1]}

        return {"generator": opt_g, "discriminator": opt_d}, epoch

    # -- sampling ----------------------------------------------------------------------------
    def _forward_sample(self, m: int, generator: Any, plan: ConditionPlan) -> Any:
        t = torch()
        device = self._sample_device
        noise = t.randn(m, int(self.embedding), generator=generator).to(device)
        spans = self._cond_spans()
        inputs = noise
        if spans:
            sizes = [self._layout.spans[j].width for j in spans]
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            cond = t.zeros(m, int(sum(sizes)))
            fixed = [(k, name) for k, j in enumerate(spans) for name in plan.categorical
                     if self._layout.spans[j].column == name]
            if fixed:
                k, name = fixed[0]
                code = plan.categorical[name]
                slot = self.encoder_._categories[name].size if code == -1 else code
                cond[:, offsets[k] + slot] = 1.0
            else:
                freq = self._frequencies()
                column = t.randint(0, len(spans), (m,), generator=generator)
                u = t.rand(m, generator=generator)
                cum = t.as_tensor(np.cumsum(freq, axis=1))
                category = (cum[column] < u[:, None].double()).sum(dim=1).clamp_max(
                    t.as_tensor(sizes)[column] - 1)
                cond[t.arange(m), t.as_tensor(offsets)[column] + category] = 1.0
            inputs = t.cat([noise, cond.to(device)], dim=1)
        raw = self._modules["generator"](inputs)
        return self._gate(self._layout.activate(raw, tau=0.2, generator=generator))

    def _gate(self, out: Any) -> Any:
        """Values scaled by their mode's chance to be Gaussian: a row on an exact mode (a spike
        such as capital-gain's zeros) has value 0 in the real data, so it gets 0 here too."""
        t = torch()
        if not hasattr(self, "_gauss") or self._gauss.device != out.device:
            self._gauss = t.as_tensor(self.encoder_.gaussian_slots(), device=out.device)
        if not len(self._gauss):
            return out
        tanh = self._layout.tanh
        gated = out.clone()
        gated[:, tanh] = out[:, tanh] * (out @ self._gauss.T)
        return gated

    def _frequencies(self) -> np.ndarray:
        """Real category shares of each conditional column (rows × widest), from the encoder."""
        spans = [self._layout.spans[j] for j in self._cond_spans()]
        widest = max(s.width for s in spans)
        out = np.zeros((len(spans), widest))
        shares = getattr(self, "cond_shares_", None)
        for k, span in enumerate(spans):
            share = shares[k] if shares is not None else np.ones(span.width) / span.width
            out[k, :span.width] = np.asarray(share, dtype=np.float64)[:span.width]
        return out / out.sum(axis=1, keepdims=True)

    def _learn(self, matrix: np.ndarray, reference: np.ndarray | None, rng: np.random.Generator,
               init: Any) -> None:
        spans = [s for s in self.encoder_.softmax_spans("categorical")]
        self.cond_shares_ = [matrix[:, s.start:s.start + s.width].mean(axis=0).tolist() for s in spans]
        super()._learn(matrix, reference, rng, init)

    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._model_state()
        for k, share in enumerate(self.cond_shares_):
            arrays[f"cond_share.{k}"] = np.asarray(share, dtype=np.float64)
        return state, arrays

    def _load_model_state(self, state: Any, arrays: dict[str, np.ndarray]) -> None:
        from datakiln.errors import ModelFormatError

        spans = self.encoder_.softmax_spans("categorical")
        shares = []
        for k, span in enumerate(spans):
            share = arrays.pop(f"cond_share.{k}", None)
            if share is None or share.shape != (span.width,) or (share < 0).any() or not share.sum() > 0:
                raise ModelFormatError(f"array 'cond_share.{k}' must hold {span.width} category shares of "
                                       f"{span.column!r} (>= 0, not all 0)")
            shares.append(share.tolist())
        if any(k.startswith("cond_share.") for k in arrays):
            raise ModelFormatError("the model file holds more 'cond_share' arrays than categorical columns")
        self.cond_shares_ = shares
        super()._load_model_state(state, arrays)
