"""The image synthesizers' shared contract and training loop.

``fit(images, label="label")`` decodes the images once (:mod:`._data`), pads them to a
multiple of 8 pixels (28 × 28 MNIST → 32 × 32, cropped back when sampling), and trains
epoch by epoch:

- the batch order of epoch ``e`` comes from ``(seed, e)`` and the noise from a generator
  seeded the same way, so a fit resumed from a checkpoint continues exactly the run it
  left (on CPU; CUDA kernels may differ in the last bits);
- ``checkpoint=path`` writes a model file every ``checkpoint_every`` epochs (atomically;
  it also holds the optimizers and the discriminator); ``fit(..., resume=path)`` goes on
  from it; the checkpoint itself loads with :func:`datakiln.synth.load` as a model;
- ``early_stopping=True`` holds out ``validation`` (default 10%) of each class, trains a
  small feature classifier on the rest (:mod:`._features`) and every ``eval_every`` epochs
  measures the Fréchet distance of 1,000 samples to the held-out images in its features;
  training stops after ``patience`` measures without improvement and the best weights are
  kept;
- ``on_epoch(record)`` receives each :class:`~._training.EpochRecord` (losses, seconds,
  score) — the CLI draws its progress bar from it.

``sample(n, conditions={"label": "cat"}, seed=0)`` returns an Arrow table of PNG bytes
(``image``) and the class (``label``, with the training label's type): the same seed gives
the same images, and a saved model gives the same images after loading.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from datakiln._optional import import_optional
from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.synth.base import Synthesizer
from datakiln.synth.images._data import ImageArrays, images_to_arrays, labels_table
from datakiln.synth.images._training import (
    EpochCallback,
    EpochRecord,
    arrays_to_module,
    choose_device,
    module_arrays,
    optimizer_arrays,
    optimizer_from_arrays,
    seeded,
    torch_threads,
)
from datakiln.synth.modelfile import ModelData, read_model, write_model

__all__ = ["ImageSynthesizer"]

log = logging.getLogger(__name__)
_SAMPLE_BATCH = 500


class ImageSynthesizer(Synthesizer):
    """Base of :class:`ConvVAE` and :class:`ConditionalGAN` (see the module docstring)."""

    _nets: ClassVar[tuple[str, ...]] = ()  # every network (checkpointed)
    _sampler_net: ClassVar[str] = ""  # the network that draws images (saved)
    _optimizers: ClassVar[tuple[str, ...]] = ()

    # -- subclasses implement ---------------------------------------------------------------------
    def _build(self, torch: Any) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _make_optimizers(self, torch: Any) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, torch: Any, x: Any, y: Any, generator: Any) -> dict[str, float]:  # pragma: no cover
        raise NotImplementedError

    def _draw(self, torch: Any, z: Any, y: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- fit -------------------------------------------------------------------------------------------
    def fit(
        self,
        data: Any,
        label: str | None = "label",
        *,
        resume: str | os.PathLike[str] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        on_epoch: EpochCallback | None = None,
        on_progress: Any = None,
    ) -> ImageSynthesizer:
        """Learn from an image Dataset (``datakiln.read_images(folder)``, an IDX file read with
        ``labels=``) or an Arrow table with an ``image`` column; returns ``self``.

        ``resume``: a checkpoint written by an earlier fit with ``checkpoint=`` (same model
        parameters); ``on_progress(images)`` is called after every batch.
        """
        torch = import_optional("torch", extra="torch")
        self._check_params()
        if checkpoint is not None:  # refused now (a foreign file there), not after the first epochs
            from datakiln.io.write import check_output
            from datakiln.synth.modelfile import is_own_model

            check_output(checkpoint, is_own=is_own_model)
        arrays = images_to_arrays(data, label=label, size=self.image_size)
        if arrays.classes and len(arrays.classes) > 1000:
            raise InvalidArgumentError(
                f"{len(arrays.classes):,} classes: a class-conditional image model "
                "needs at most 1,000; is the label column an identifier?"
            )
        self._set_shape(arrays, label or "label")
        train, valid = self._split(arrays)
        started = time.perf_counter()
        with torch_threads(self.threads):
            self.device_ = choose_device(self.device)
            with seeded(self.seed):
                self.nets_ = {k: v.to(self.device_) for k, v in self._build(torch).items()}
            self.optimizers_ = self._make_optimizers(torch)
            self.history_: list[dict[str, Any]] = []
            first = 1
            if resume is not None:
                first = self._resume(resume) + 1
            scorer = self._scorer(train, valid) if valid is not None else None
            self._loop(torch, train, first, scorer, checkpoint, on_epoch, on_progress)
        self.seconds_ = time.perf_counter() - started
        for net in self.nets_.values():
            net.eval()
        return self

    def _check_params(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidArgumentError(f"{name} must be a whole number >= 1, got {value!r}")
        if not 0 <= self.validation < 0.5:
            raise InvalidArgumentError(f"validation must be a share in [0, 0.5), got {self.validation!r}")
        if self.checkpoint_every < 1:
            raise InvalidArgumentError(f"checkpoint_every must be >= 1, got {self.checkpoint_every!r}")

    def _set_shape(self, arrays: ImageArrays, label: str = "label") -> None:
        n, h, w, c = arrays.pixels.shape
        self.height_, self.width_, self.channels_ = int(h), int(w), int(c)
        self.pad_ = ((-h) % 8, (-w) % 8)
        if (h + self.pad_[0]) // 8 < 1 or (w + self.pad_[1]) // 8 < 1 or max(h, w) > 128:
            raise InvalidArgumentError(
                f"images of {h}×{w} pixels: the image models learn sizes from 8 to 128 "
                "pixels a side; give image_size=32 to resize"
            )
        if not arrays.classes:
            arrays.classes, arrays.codes = ["0"], np.zeros(n, np.int64)
        self.classes_ = list(arrays.classes)
        self.label_type_ = arrays.label_type
        self.class_counts_ = np.bincount(arrays.codes, minlength=len(self.classes_)).astype(np.int64)
        self.schema_ = labels_table(
            arrays.pixels[:0], arrays.codes[:0], self.classes_, self.label_type_, label=label
        ).schema

    def _split(self, arrays: ImageArrays) -> tuple[ImageArrays, ImageArrays | None]:
        if not self.early_stopping or self.validation == 0:
            return arrays, None
        rng = np.random.default_rng([self.seed, 7])
        held = np.zeros(len(arrays.codes), bool)
        for code in range(len(self.classes_)):
            members = np.flatnonzero(arrays.codes == code)
            take = int(round(len(members) * self.validation))
            held[rng.choice(members, take, replace=False)] = True
        if held.sum() < 20:  # too few to measure: train on everything, say so
            log.warning("early stopping off: %d held-out images are too few (20 needed)", held.sum())
            self.early_stopping_skipped_ = True
            return arrays, None
        keep = ImageArrays(arrays.pixels[~held], arrays.codes[~held], arrays.classes, arrays.label_type)
        return keep, ImageArrays(arrays.pixels[held], arrays.codes[held], arrays.classes, arrays.label_type)

    def _scorer(self, train: ImageArrays, valid: ImageArrays) -> Any:
        from datakiln.synth.images._features import FeatureClassifier, frechet_distance

        judge = FeatureClassifier(
            width=24, epochs=self.scorer_epochs, seed=self.seed + 101, device=self.device
        ).fit(train.pixels, train.codes, len(self.classes_))
        reference = judge.features(valid.pixels)
        counts = np.bincount(valid.codes, minlength=len(self.classes_))

        def score() -> float:
            codes = np.repeat(np.arange(len(self.classes_)), counts)
            images = self._generate(codes, np.random.default_rng([self.seed, 99]))
            return frechet_distance(judge.features(images), reference)

        return score

    def _loop(
        self,
        torch: Any,
        train: ImageArrays,
        first: int,
        scorer: Any,
        checkpoint: Any,
        on_epoch: EpochCallback | None,
        on_progress: Any,
    ) -> None:
        x_all = torch.from_numpy(self._to_model(train.pixels))
        y_all = torch.from_numpy(train.codes)
        best, since, best_state = np.inf, 0, None
        for record in self.history_:
            if record.get("score") is not None and record["score"] < best:
                best = record["score"]
        for epoch in range(first, self.epochs + 1):
            started = time.perf_counter()
            for net in self.nets_.values():
                net.train()
            order = np.random.default_rng([self.seed, epoch]).permutation(len(x_all))
            generator = torch.Generator(device=self.device_).manual_seed(self.seed * 100_003 + epoch)
            totals: dict[str, float] = {}
            batches = 0
            for start in range(0, max(len(order) - self.batch_size, 0) + 1, self.batch_size):
                index = torch.from_numpy(order[start : start + self.batch_size])
                losses = self._step(
                    torch, x_all[index].to(self.device_), y_all[index].to(self.device_), generator
                )
                for key, value in losses.items():
                    if not np.isfinite(value):
                        raise FloatingPointError(
                            f"{type(self).__name__}: loss {key} became {value} in epoch "
                            f"{epoch}; lower lr (now {self.lr})"
                        )
                    totals[key] = totals.get(key, 0.0) + value
                batches += 1
                if on_progress is not None:
                    on_progress(len(index))
            record = EpochRecord(
                epoch,
                {k: v / max(batches, 1) for k, v in totals.items()},
                time.perf_counter() - started,
                batches * self.batch_size,
            )
            measured = scorer is not None and (epoch % self.eval_every == 0 or epoch == self.epochs)
            if measured:
                record.score = float(scorer())
            self.history_.append(record.to_dict())
            log.info("epoch %d: %s", epoch, record.losses)
            if on_epoch is not None:
                on_epoch(record)
            if checkpoint is not None and (epoch % self.checkpoint_every == 0 or epoch == self.epochs):
                self._write(checkpoint, full=True, epoch=epoch, overwrite=False)
            if measured:
                if record.score < best:
                    best, since = record.score, 0
                    best_state = {k: v.detach().clone() for k, v in self._sampler().state_dict().items()}
                    self.best_epoch_ = epoch
                else:
                    since += 1
                    if since >= self.patience:
                        log.info("early stop at epoch %d (best %d)", epoch, self.best_epoch_)
                        break
        if best_state is not None:
            self._sampler().load_state_dict(best_state)
        self.epochs_done_ = self.history_[-1]["epoch"] if self.history_ else 0

    # -- images <-> model space --------------------------------------------------------------------
    def _to_model(self, pixels: np.ndarray) -> np.ndarray:
        x = pixels.astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0
        ph, pw = self.pad_
        if ph or pw:
            x = np.pad(
                x, ((0, 0), (0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)), constant_values=-1.0
            )
        return np.ascontiguousarray(x)

    def _from_model(self, x: np.ndarray) -> np.ndarray:
        ph, pw = self.pad_
        x = x[:, :, ph // 2 : ph // 2 + self.height_, pw // 2 : pw // 2 + self.width_]
        return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)

    def _label_name(self) -> str:
        """The label column's name in the training images (``label`` unless fit said otherwise)."""
        return self.schema_.names[1] if len(self.schema_) > 1 else "label"

    def _sampler(self) -> Any:
        return self.nets_[self._sampler_net]

    def _chunks(self, codes: np.ndarray, rng: np.random.Generator) -> Any:
        """uint8 images of the classes ``codes``, 500 at a time; the noise comes from one torch
        generator seeded from ``rng`` in fixed chunks, so any batching yields the same images."""
        torch = import_optional("torch", extra="torch")
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        net = self._sampler()
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(codes), _SAMPLE_BATCH):
                    y = torch.from_numpy(np.asarray(codes[start : start + _SAMPLE_BATCH], np.int64))
                    z = torch.randn((len(y), self.latent_dim), generator=generator)
                    drawn = self._draw(torch, z.to(self.device_), y.to(self.device_)).float().cpu().numpy()
                    yield self._from_model(drawn)
        finally:
            net.train(was_training)

    def _generate(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint8 N×H×W×C images of the classes ``codes`` (noise from ``rng``)."""
        out = list(self._chunks(codes, rng))
        shape = (0, self.height_, self.width_, self.channels_)
        return np.concatenate(out) if out else np.zeros(shape, np.uint8)

    # -- sample ------------------------------------------------------------------------------------
    def sample_images(
        self, n: int, conditions: dict[str, Any] | None = None, seed: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` images as (uint8 N×H×W×C pixels, class codes into ``classes_``); no PNG encoding."""
        self._check_sample_args(n, conditions, seed)
        rng = np.random.default_rng(seed)
        codes = self._codes(int(n), dict(conditions or {}), rng)
        return self._generate(codes, rng), codes

    def _codes(self, n: int, conditions: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        names = [k for k in conditions if k != self.schema_.names[0]]
        if self.schema_.names[0] in conditions:
            raise InvalidArgumentError("images cannot be conditioned on pixels; condition on the label")
        if not names:
            share = self.class_counts_ / self.class_counts_.sum()
            return rng.choice(len(self.classes_), size=n, p=share).astype(np.int64)
        value = conditions[names[0]]
        if isinstance(value, (tuple, list)):
            raise InvalidArgumentError(f"the condition on {names[0]!r} must be one class, got {value!r}")
        text = str(value)
        if text not in self.classes_:
            raise InvalidArgumentError(
                f"{names[0]}={value!r} is not a class of the training images; the "
                f"classes are {self.classes_[:30]}"
            )
        return np.full(n, self.classes_.index(text), np.int64)

    def _sample(self, n: int, conditions: dict[str, Any], rng: np.random.Generator) -> pa.Table:
        codes = self._codes(n, conditions, rng)
        return labels_table(
            self._generate(codes, rng), codes, self.classes_, self.label_type_, label=self._label_name()
        )

    def _batches(self, n: int, batch_rows: int, conditions: dict[str, Any], rng: np.random.Generator) -> Any:
        """The images of ``sample(n, conditions, seed)`` (the same ones) in tables of ``batch_rows``."""
        codes = self._codes(n, conditions, rng)
        pending: list[np.ndarray] = []
        done = 0
        for chunk in self._chunks(codes, rng):
            pending.append(chunk)
            while sum(len(p) for p in pending) >= batch_rows:
                pixels = np.concatenate(pending)
                part, pending = pixels[:batch_rows], [pixels[batch_rows:]]
                yield labels_table(
                    part,
                    codes[done : done + len(part)],
                    self.classes_,
                    self.label_type_,
                    label=self._label_name(),
                )
                done += len(part)
        rest = np.concatenate(pending) if pending else np.zeros((0,), np.uint8)
        if len(rest):
            yield labels_table(rest, codes[done:], self.classes_, self.label_type_, label=self._label_name())

    # -- files -------------------------------------------------------------------------------------------
    def _to_state(self, full: bool = False) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state = {
            "classes": self.classes_,
            "height": self.height_,
            "width": self.width_,
            "channels": self.channels_,
            "pad": list(self.pad_),
            "history": self.history_,
            "class_counts": [int(c) for c in self.class_counts_],
            "epochs_done": getattr(self, "epochs_done_", 0),
        }
        arrays = module_arrays(self._sampler(), self._sampler_net)
        if full:
            for name in self._nets:
                if name != self._sampler_net:
                    arrays.update(module_arrays(self.nets_[name], name))
            optimizers = {}
            for name, optimizer in self.optimizers_.items():
                meta, more = optimizer_arrays(optimizer, f"opt_{name}")
                optimizers[name] = meta
                arrays.update(more)
            state["checkpoint"] = {"optimizers": optimizers}
        return state, arrays

    def _from_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        torch = import_optional("torch", extra="torch")
        classes = state["classes"]
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise ValueError("state field 'classes' must be a non-empty list of class names")
        for key in ("height", "width", "channels", "epochs_done"):
            if not isinstance(state[key], int) or isinstance(state[key], bool) or state[key] < 0:
                raise ValueError(f"state field {key!r} must be a whole number, got {state[key]!r}")
        if state["channels"] not in (1, 3) or not 8 <= max(state["height"], state["width"]) <= 128:
            raise ValueError("state fields 'channels', 'height', 'width' describe no supported image")
        counts = np.asarray(state["class_counts"], np.int64)
        if counts.shape != (len(classes),) or (counts < 0).any() or counts.sum() < 1:
            raise ValueError("state field 'class_counts' must count each class")
        self.classes_, self.class_counts_ = list(classes), counts
        self.height_, self.width_, self.channels_ = state["height"], state["width"], state["channels"]
        self.pad_ = ((-self.height_) % 8, (-self.width_) % 8)
        if list(self.pad_) != state["pad"]:
            raise ValueError("state field 'pad' does not match the image size")
        self.history_, self.epochs_done_ = list(state.get("history", [])), state["epochs_done"]
        label = self.schema_.field(self.schema_.names[1]) if len(self.schema_) > 1 else None
        self.label_type_ = label.type if label is not None else None
        # a model trained on a GPU loads anywhere: CUDA when present, else the CPU
        self.device_ = choose_device("auto" if str(self.device).startswith(("auto", "cuda")) else self.device)
        with seeded(self.seed):
            self.nets_ = {k: v.to(self.device_) for k, v in self._build(torch).items()}
        arrays_to_module(self._sampler(), arrays, self._sampler_net)
        self._sampler().eval()
        self._loaded_arrays = arrays
        self._loaded_state = state

    def _resume(self, path: str | os.PathLike[str]) -> int:
        data = read_model(path)
        where = str(path)
        if data.model != type(self).__name__:
            raise ModelFormatError(f"{where!r} is a {data.model} checkpoint, not {type(self).__name__}")
        state = data.payload.get("state", {})
        if "checkpoint" not in state:
            raise ModelFormatError(
                f"{where!r} is a saved model without optimizer state; resume needs a "
                "checkpoint written by fit(..., checkpoint=path)"
            )
        if state.get("classes") != self.classes_ or [state.get("height"), state.get("width")] != [
            self.height_,
            self.width_,
        ]:
            raise ModelFormatError(f"{where!r} was trained on other classes or image sizes than these images")
        params = data.payload.get("params", {})
        differ = [
            k for k in ("latent_dim", "width", "seed", "batch_size") if params.get(k) != getattr(self, k)
        ]
        if differ:
            raise ModelFormatError(
                f"{where!r} was trained with other {differ}; resume with the same parameters"
            )
        try:
            for name in self._nets:
                arrays_to_module(self.nets_[name], data.arrays, name)
            for name, optimizer in self.optimizers_.items():
                optimizer_from_arrays(
                    optimizer, state["checkpoint"]["optimizers"][name], data.arrays, f"opt_{name}"
                )
        except (KeyError, ValueError) as exc:
            raise ModelFormatError(f"{where!r}: the checkpoint cannot be restored ({exc})") from exc
        self.history_ = list(state.get("history", []))
        return int(state["epochs_done"])

    def _write(self, path: str | os.PathLike[str], *, full: bool, epoch: int, overwrite: bool) -> None:
        self.epochs_done_ = epoch
        state, arrays = self._to_state(full=full)
        schema = self.schema_.serialize().to_pybytes()
        payload = {"params": self.get_params(), "state": state, "state_version": self._state_version}
        write_model(
            path,
            ModelData(
                type(self).__name__, payload, {**arrays, "__schema__": np.frombuffer(schema, dtype=np.uint8)}
            ),
            overwrite=overwrite,
        )

    def summary(self) -> dict[str, Any]:
        """What was learned: classes, image shape, epochs, the last losses and scores."""
        return {
            "model": type(self).__name__,
            "classes": self.classes_,
            "image": [self.height_, self.width_, self.channels_],
            "epochs": self.epochs_done_,
            "history": self.history_[-3:],
            "best_epoch": getattr(self, "best_epoch_", None),
        }
