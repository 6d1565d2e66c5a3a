"""TorchSynthesizer: what TVAE, CTGAN and later torch models share on top of NeuralSynthesizer.

The data matrix goes to the device once; :func:`~datakiln.synth.neural._training.train`
runs the epochs; the networks are rebuilt from their JSON config on load and their
weights checked name by name and shape by shape. A warm start (``init=``) copies every
weight of the init model; weights that touch the data layout (a category the new data adds
grows a one-hot span) are copied slot by slot through the encoder's index map
(:meth:`TorchSynthesizer._layout_dims` names them), the new slots keep their fresh values.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.synth.neural._conditions import ConditionPlan
from datakiln.synth.neural._training import (
    Layout,
    device_of,
    fingerprint,
    load_module_arrays,
    module_arrays,
    torch,
    torch_session,
    train,
)
from datakiln.synth.neural.base import NeuralSynthesizer

__all__ = ["TorchSynthesizer"]


class TorchSynthesizer(NeuralSynthesizer):
    """Base of the torch models (see the module docstring)."""

    _config_keys: ClassVar[tuple[str, ...]] = ()  # constructor arguments that shape the networks
    epochs: int
    batch_size: int
    device: str
    threads: int | None
    patience: int | None
    check_every: int
    checkpoint: str | None
    verbose: bool

    def _check_training_params(self) -> None:
        for name in ("epochs", "batch_size", "check_every"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise InvalidArgumentError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise InvalidArgumentError(f"patience must be None (no early stopping) or a whole number >= 1, "
                                       f"got {self.patience!r}")

    # -- to implement ------------------------------------------------------------------------
    def _build(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """The networks (name → nn.Module) for ``self.encoder_``'s layout, on ``self._device``."""
        raise NotImplementedError

    def _setup_training(self, data: Any, codes: np.ndarray, rng: np.random.Generator
                        ) -> tuple[dict[str, Any], Any]:  # pragma: no cover - abstract
        """(optimizers, epoch_fn) for the data tensor (and the rows' hot slots, rows × spans)."""
        raise NotImplementedError

    def _layout_dims(self) -> dict[str, dict[int, str]]:
        """``{"module.param": {dim: what}}`` for weights whose dimension follows the data layout;
        ``what`` is ``"data"`` (the encoded width) or a name :meth:`_dim_map` knows."""
        return {}

    # -- fitting -----------------------------------------------------------------------------
    def _learn(self, matrix: np.ndarray, reference: np.ndarray | None, rng: np.random.Generator,
               init: NeuralSynthesizer | None) -> None:
        self._check_training_params()
        t = torch()
        self._device = device_of(self.device)
        self._layout = Layout(self.encoder_.spans, self._device)
        self._sample_device = self._device
        key = fingerprint(self, matrix)
        with torch_session(self.seed, self.threads, self._device):
            self._modules = self._build()
            if init is not None:
                self._transfer(init)
            data = t.as_tensor(matrix, device=self._device)
            codes = self._hot_slots(matrix)
            # rows × value columns: 1 where the value matters (a Gaussian mode), for the losses
            self._value_mask = t.as_tensor(self.encoder_.value_mask(matrix), dtype=data.dtype,
                                           device=self._device)
            optimizers, epoch_fn = self._setup_training(data, codes, rng)
            self.history_ = train(self, epochs=int(self.epochs), epoch_fn=epoch_fn, modules=self._modules,
                                  optimizers=optimizers, reference=reference, rng=rng, device=self._device,
                                  key=key, patience=self.patience, check_every=int(self.check_every),
                                  checkpoint=self.checkpoint, verbose=bool(self.verbose))

    def _hot_slots(self, matrix: np.ndarray) -> np.ndarray:
        """Rows × softmax spans: the hot slot of each span."""
        spans = self._layout.spans
        out = np.empty((len(matrix), len(spans)), dtype=np.int64)
        for j, span in enumerate(spans):
            out[:, j] = np.argmax(matrix[:, span.start:span.start + span.width], axis=1)
        return out

    def _transfer(self, init: NeuralSynthesizer) -> None:
        """Copy ``init``'s weights into the fresh networks (layout dimensions slot by slot)."""
        t = torch()
        old = module_arrays(init._modules)  # type: ignore[attr-defined]
        dims = self._layout_dims()
        for name, module in self._modules.items():
            state = module.state_dict()
            for key, value in state.items():
                source = old.get(f"net.{name}.{key}")
                if source is None:
                    continue
                if tuple(source.shape) == tuple(value.shape) and not dims.get(f"{name}.{key}"):
                    state[key] = t.as_tensor(source).to(value.dtype)
                    continue
                target = value.detach().cpu().numpy().copy()
                index = [np.arange(s) for s in source.shape]
                places = [np.arange(s) for s in source.shape]
                for dim, what in dims.get(f"{name}.{key}", {}).items():
                    index[dim], places[dim] = self._dim_map(what, init)
                if any(len(i) != len(p) for i, p in zip(index, places)) or any(
                        p.max(initial=-1) >= target.shape[d] for d, p in enumerate(places)):
                    raise InvalidArgumentError(f"init cannot be mapped onto this model: weight {name}.{key} "
                                               f"has shape {tuple(source.shape)}, here {tuple(value.shape)}")
                target[np.ix_(*places)] = source[np.ix_(*index)]
                state[key] = t.as_tensor(target).to(value.dtype)
            module.load_state_dict(state)

    def _dim_map(self, what: str, init: NeuralSynthesizer) -> tuple[np.ndarray, np.ndarray]:
        """(old positions, new positions) along a layout dimension of kind ``what``."""
        if what == "data":
            return self.encoder_.index_map(init.encoder_)
        raise NotImplementedError(what)  # pragma: no cover - models add their own kinds

    # -- sampling ----------------------------------------------------------------------------
    def _torch_rng(self, rng: np.random.Generator) -> Any:
        t = torch()
        generator = t.Generator(device="cpu")
        generator.manual_seed(int(rng.integers(0, 2**62)))
        return generator

    def fidelity(self, reference: np.ndarray, rng: np.random.Generator, rows: int | None = None) -> float:
        for module in self._modules.values():
            module.eval()
        try:
            return super().fidelity(reference, rng, rows)
        finally:
            for module in self._modules.values():
                module.train()

    def _generate(self, m: int, rng: np.random.Generator, plan: ConditionPlan) -> np.ndarray:
        t = torch()
        generator = self._torch_rng(rng)
        with t.no_grad():
            out = self._forward_sample(m, generator, plan)
        return out.detach().cpu().numpy()

    def _forward_sample(self, m: int, generator: Any, plan: ConditionPlan) -> Any:  # pragma: no cover
        raise NotImplementedError

    # -- model files ---------------------------------------------------------------------------
    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"history": getattr(self, "history_", None)}, module_arrays(self._modules)

    def _load_model_state(self, state: Any, arrays: dict[str, np.ndarray]) -> None:
        if not isinstance(state, dict):
            raise ModelFormatError("state field 'model' must be an object")
        self._device = device_of("cpu")
        self._sample_device = self._device
        from datakiln.synth.neural._encoding import Encoder  # noqa: F401  (layout already checked)

        self._layout = Layout(self.encoder_.spans, self._device)
        self._modules = self._build()
        load_module_arrays(self._modules, arrays)
        for module in self._modules.values():
            module.eval()
        history = state.get("history")
        if history is not None and not isinstance(history, list):
            raise ModelFormatError("state field 'model.history' must be a list of epoch records")
        self.history_ = history
