"""The training loop shared by the torch models, and the span operations on their outputs.

:func:`train` runs ``epoch_fn(epoch)`` (one pass of a model's batched steps, returning its
mean losses) for ``epochs`` epochs and adds what every model needs:

- ``device="auto"``: CUDA when available, else CPU; weights are saved as CPU arrays.
- Threads: torch uses ``threads`` (default: every core of the machine) during the fit and
  gets its former setting back after.
- Determinism: the fit runs inside ``torch.random.fork_rng`` seeded from ``seed``, so the
  same seed gives the same weights on CPU (same thread count), and the caller's global
  torch random state is left untouched.
- Progress: ``verbose=True`` shows a rich progress bar with the live losses of each epoch;
  ``history`` (one ``{"epoch", losses..., "seconds", "fidelity"}`` record per epoch; ``seconds``
  is the epoch's training time, without the fidelity check) is kept either way.
- Early stopping: every ``check_every`` epochs the model's fidelity on the validation split
  (:meth:`NeuralSynthesizer.fidelity`) is measured; after ``patience`` checks without a gain
  the fit stops and the best weights are restored.
- Checkpoints: with ``checkpoint=path`` the modules, optimizers, random states, history and
  best weights are written atomically every ``check_every`` epochs (a ``.kiln`` file, never
  pickle); a later fit with the same settings and data resumes from it exactly.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from datakiln._optional import import_optional
from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.synth.modelfile import ModelData, read_model, write_model

__all__ = ["Layout", "device_of", "fingerprint", "module_arrays", "load_module_arrays", "torch", "train"]


def torch() -> Any:
    """The torch module (the ``torch`` extra)."""
    return import_optional("torch", extra="torch", purpose="the neural synthesizers")


def device_of(device: str) -> Any:
    """``"auto"`` → CUDA if available, else CPU; other names as given (checked)."""
    t = torch()
    if device == "auto":
        return t.device("cuda" if t.cuda.is_available() else "cpu")
    try:
        chosen = t.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidArgumentError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}") from exc
    if chosen.type == "cuda" and not t.cuda.is_available():
        raise InvalidArgumentError(f"device={device!r} but CUDA is not available here; use device='auto' "
                                   f"or 'cpu'")
    return chosen


@contextlib.contextmanager
def torch_session(seed: int, threads: int | None, device: Any) -> Iterator[None]:
    """Seeded, forked random state and the thread count for one fit or sampling run."""
    t = torch()
    before = t.get_num_threads()
    devices = [device] if device.type == "cuda" else []
    t.set_num_threads(int(threads or os.cpu_count() or 1))
    try:
        with t.random.fork_rng(devices=devices):
            t.manual_seed(int(seed))
            yield
    finally:
        t.set_num_threads(before)


class Layout:
    """Torch operations over an encoder's spans: activations and per-span cross-entropy."""

    def __init__(self, spans: list[Any], device: Any) -> None:
        t = torch()
        self.width = sum(s.width for s in spans)
        tanh = [s.start for s in spans if s.activation == "tanh"]
        soft = [s for s in spans if s.activation == "softmax"]
        widest = max((s.width for s in soft), default=1)
        index = np.zeros((len(soft), widest), dtype=np.int64)
        valid = np.zeros((len(soft), widest), dtype=bool)
        for j, span in enumerate(soft):
            index[j, :span.width] = np.arange(span.start, span.start + span.width)
            valid[j, :span.width] = True
        positions = np.concatenate([np.asarray(tanh, dtype=np.int64), index[valid]])
        self.tanh = t.as_tensor(tanh, dtype=t.long, device=device)
        self.index = t.as_tensor(index, device=device)
        self.pad = t.as_tensor(~valid, device=device)
        self.valid_flat = t.as_tensor(np.flatnonzero(valid.ravel()), device=device)
        self.order = t.as_tensor(np.argsort(positions), device=device)
        self.spans = soft
        self.starts = np.array([s.start for s in soft], dtype=np.int64)
        # spans of similar width share one padded block: less padding than one block for all
        ranked = sorted(range(len(soft)), key=lambda j: soft[j].width)
        groups: list[list[int]] = []
        for j in ranked:
            if groups and soft[j].width <= 2 * soft[groups[-1][0]].width:
                groups[-1].append(j)
            else:
                groups.append([j])
        self.groups = []
        bucket_positions = [np.asarray(tanh, dtype=np.int64)]
        for members in groups:
            w = max(soft[j].width for j in members)
            g_index, g_valid = index[members, :w], valid[members, :w]
            self.groups.append((t.as_tensor(members, dtype=t.long, device=device),
                                t.as_tensor(g_index, device=device), t.as_tensor(~g_valid, device=device),
                                t.as_tensor(np.flatnonzero(g_valid.ravel()), device=device)))
            bucket_positions.append(g_index[g_valid])
        self.bucket_order = t.as_tensor(np.argsort(np.concatenate(bucket_positions)), device=device)

    def logits(self, raw: Any, which: Any = None) -> Any:
        """Rows × softmax spans × widest span of ``raw``'s span logits (padding very negative)."""
        index, pad = (self.index, self.pad) if which is None else (self.index[which], self.pad[which])
        picked = raw.index_select(1, index.reshape(-1)).view(len(raw), *index.shape)
        return picked.masked_fill(pad, -1e9)

    def activate(self, raw: Any, tau: float | None = None, sigma: Any = None, generator: Any = None) -> Any:
        """tanh on values (plus ``N(0, sigma)`` noise if given), softmax per span (Gumbel with ``tau``);
        noise from ``generator`` (a CPU ``torch.Generator``) when given, else the global state."""
        t = torch()
        values = t.tanh(raw.index_select(1, self.tanh))
        if sigma is not None:
            noise = (t.randn_like(values) if generator is None
                     else t.randn(values.shape, generator=generator).to(values.device))
            values = values + noise * sigma[self.tanh]
        pieces = [values]
        for _, index, pad, valid_flat in self.groups:
            picked = raw.index_select(1, index.reshape(-1)).view(len(raw), *index.shape)
            logits = picked.masked_fill(pad, -1e9)
            if tau is not None:
                uniform = (t.rand_like(logits) if generator is None
                           else t.rand(logits.shape, generator=generator).to(logits.device))
                exponential = (-t.log(uniform.clamp_min(1e-10))).clamp_min(1e-10)
                probs = t.softmax((logits - t.log(exponential)) / tau, dim=-1)
            else:
                probs = t.softmax(logits, dim=-1)
            pieces.append(probs.reshape(len(raw), -1)[:, valid_flat])
        return t.cat(pieces, dim=1)[:, self.bucket_order]

    def cross_entropy(self, raw: Any, codes: Any) -> Any:
        """Rows' summed cross-entropy of every softmax span against its hot ``codes`` (rows × spans)."""
        t = torch()
        total = t.zeros(len(raw), dtype=raw.dtype, device=raw.device)
        for members, index, pad, _ in self.groups:
            picked = raw.index_select(1, index.reshape(-1)).view(len(raw), *index.shape)
            logits = picked.masked_fill(pad, -1e9)
            log_p = t.log_softmax(logits, dim=-1)
            total = total - log_p.gather(2, codes[:, members].unsqueeze(2)).squeeze(2).sum(dim=1)
        return total


def fingerprint(model: Any, matrix: np.ndarray) -> str:
    """Identity of a fit for resuming: class, settings (not epochs or checkpoint) and data."""
    params = {k: v for k, v in model.get_params().items()
              if k not in ("epochs", "checkpoint", "verbose", "device", "threads")}
    digest = hashlib.sha256(type(model).__name__.encode())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(np.ascontiguousarray(matrix).tobytes())
    return digest.hexdigest()


def module_arrays(modules: dict[str, Any], prefix: str = "net") -> dict[str, np.ndarray]:
    """Every parameter and buffer as a CPU NumPy array named ``prefix.module.param``."""
    out = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            out[f"{prefix}.{name}.{key}"] = value.detach().cpu().numpy().copy()
    return out


def load_module_arrays(modules: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str = "net") -> None:
    """Load :func:`module_arrays` output back, refusing missing, extra or misshaped arrays."""
    t = torch()
    for name, module in modules.items():
        expected = module.state_dict()
        head = f"{prefix}.{name}."
        given = {k.removeprefix(head): v for k, v in arrays.items() if k.startswith(head)}
        if set(given) != set(expected):
            raise ModelFormatError(f"the {name} weights do not match the network: missing "
                                   f"{sorted(set(expected) - set(given))[:5]}, unexpected "
                                   f"{sorted(set(given) - set(expected))[:5]}")
        state = {}
        for key, value in expected.items():
            if tuple(given[key].shape) != tuple(value.shape):
                raise ModelFormatError(f"weight {head}{key} has shape {tuple(given[key].shape)}, the network "
                                       f"needs {tuple(value.shape)}")
            state[key] = t.as_tensor(given[key]).to(value.dtype)
        module.load_state_dict(state)


def _optimizer_arrays(optimizers: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    groups, arrays = {}, {}
    for name, opt in optimizers.items():
        state = opt.state_dict()
        groups[name] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()
                         if isinstance(v, (int, float, bool, list, tuple, type(None)))}
                        for g in state["param_groups"]]
        for index, values in state["state"].items():
            for key, value in values.items():
                arrays[f"opt.{name}.{index}.{key}"] = value.detach().cpu().numpy().copy()
    return groups, arrays


def _load_optimizers(optimizers: dict[str, Any], groups: dict[str, Any], arrays: dict[str, np.ndarray],
                     device: Any) -> None:
    t = torch()
    for name, opt in optimizers.items():
        state: dict[int, dict[str, Any]] = {}
        for key, value in arrays.items():
            parts = key.split(".")
            if parts[0] == "opt" and parts[1] == name:
                tensor = t.as_tensor(value)
                moved = tensor if parts[3] == "step" else tensor.to(device)
                state.setdefault(int(parts[2]), {})[parts[3]] = moved
        opt.load_state_dict({"state": state, "param_groups": groups[name]})


def _rng_json(rng: np.random.Generator) -> dict[str, Any]:
    return json.loads(json.dumps(rng.bit_generator.state, default=str), parse_int=str)


def _rng_restore(rng: np.random.Generator, state: dict[str, Any]) -> None:
    def ints(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ints(v) for k, v in value.items()}
        return int(value) if isinstance(value, str) and value.lstrip("-").isdigit() else value

    rng.bit_generator.state = ints(state)


@contextlib.contextmanager
def _progress(verbose: bool, epochs: int, name: str) -> Iterator[Callable[[int, str], None]]:
    if not verbose:
        yield lambda epoch, text: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("epochs"),
               TimeElapsedColumn(), TextColumn("{task.fields[losses]}")]
    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as progress:
        task = progress.add_task(f"training {name}", total=epochs, losses="")
        yield lambda epoch, text: progress.update(task, completed=epoch, losses=text)


def train(model: Any, *, epochs: int, epoch_fn: Callable[[int], dict[str, float]], modules: dict[str, Any],
          optimizers: dict[str, Any], reference: np.ndarray | None, rng: np.random.Generator, device: Any,
          key: str, patience: int | None, check_every: int, checkpoint: str | None,
          verbose: bool) -> list[dict[str, Any]]:
    """Run the epochs (see the module docstring); returns the history."""
    t = torch()
    history: list[dict[str, Any]] = []
    start, best_score, best_state, stale = 0, -np.inf, None, 0
    path = Path(checkpoint).expanduser() if checkpoint else None
    if path is not None and path.exists():
        data = read_model(path)
        if data.model != f"checkpoint.{type(model).__name__}" or data.payload.get("key") != key:
            raise InvalidArgumentError(f"the checkpoint {str(path)!r} belongs to another fit (other model, "
                                       f"settings or data); give a new checkpoint path or remove that file")
        payload, arrays = data.payload, dict(data.arrays)
        load_module_arrays(modules, arrays, "net")
        _load_optimizers(optimizers, payload["optimizers"], arrays, device)
        t.set_rng_state(t.as_tensor(arrays["torch_rng"]))
        _rng_restore(rng, payload["rng"])
        start, history, stale = int(payload["epoch"]), payload["history"], int(payload["stale"])
        best_score = float(payload["best_score"]) if payload["best_score"] is not None else -np.inf
        if any(k.startswith("best.") for k in arrays):
            best_state = {k: v for k, v in arrays.items() if k.startswith("best.")}
    stopped = False
    with _progress(verbose, epochs, type(model).__name__) as show:
        for epoch in range(start, epochs):
            for module in modules.values():
                module.train()
            began = time.perf_counter()
            losses = epoch_fn(epoch)
            record: dict[str, Any] = {"epoch": epoch + 1,
                                      **{k: round(float(v), 5) for k, v in losses.items()},
                                      "seconds": round(time.perf_counter() - began, 4)}
            last = epoch + 1 == epochs
            if reference is not None and ((epoch + 1) % check_every == 0 or last):
                score = model.fidelity(reference, np.random.default_rng([int(model.seed), epoch]))
                record["fidelity"] = round(score, 5)
                if score > best_score:
                    best_score, stale = score, 0
                    best_state = module_arrays(modules, "best")
                else:
                    stale += 1
                stopped = patience is not None and stale >= patience
            history.append(record)
            show(epoch + 1, "  ".join(f"{k} {v:.4f}" for k, v in record.items()
                                      if k not in ("epoch", "seconds")))
            if path is not None and ((epoch + 1) % check_every == 0 or last or stopped):
                _save_checkpoint(path, model, key, epoch + 1, history, stale, best_score, best_state, modules,
                                 optimizers, rng)
            if stopped:
                break
    if best_state is not None and patience is not None:
        load_module_arrays(modules, best_state, "best")
    for module in modules.values():
        module.eval()
    return history


def _save_checkpoint(path: Path, model: Any, key: str, epoch: int, history: list[dict[str, Any]], stale: int,
                     best_score: float, best_state: dict[str, np.ndarray] | None, modules: dict[str, Any],
                     optimizers: dict[str, Any], rng: np.random.Generator) -> None:
    t = torch()
    groups, arrays = _optimizer_arrays(optimizers)
    arrays.update(module_arrays(modules, "net"))
    arrays.update(copy.copy(best_state or {}))
    arrays["torch_rng"] = t.get_rng_state().numpy().copy()
    payload = {"key": key, "epoch": epoch, "history": history, "stale": stale,
               "best_score": None if not np.isfinite(best_score) else float(best_score),
               "optimizers": groups, "rng": _rng_json(rng)}
    write_model(path, ModelData(f"checkpoint.{type(model).__name__}", payload, arrays))
