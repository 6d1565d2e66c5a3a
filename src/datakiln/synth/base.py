"""The Synthesizer contract every model follows (copula now, neural ones later).

- ``__init__`` stores keyword arguments only; ``fit(data)`` takes a Dataset, Arrow table
  or pandas DataFrame (streaming its batches where the model allows), validates, learns
  and returns ``self``; learned state ends in ``_``.
- ``sample(n, conditions=None, seed=None)`` returns an Arrow table with the training
  schema (names, types, categories, nulls allowed); the same seed gives the same rows.
- ``save(path)`` writes a model file (:mod:`datakiln.synth.modelfile`: JSON + arrays,
  versioned, checksummed, never pickle); :func:`load` reads any registered model back.

A model implements ``_fit``, ``_sample``, and ``_to_state`` / ``_from_state`` (plain JSON
plus NumPy arrays) and registers itself with :func:`register`.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.synth.modelfile import ModelData, read_model, write_model

log = logging.getLogger(__name__)


def _check_condition(name: str, value: Any, dtype: pa.DataType) -> None:
    """Refuse a condition that cannot hold: a value of the wrong type for a numeric or time
    column, or an empty range (``(60, 20)`` gave every row 60 before)."""
    is_range = isinstance(value, (tuple, list))
    ends = list(value) if is_range else [value]
    if is_range and len(ends) != 2:
        raise InvalidArgumentError(f"the condition on {name!r} must be a value or a (low, high) pair, "
                                   f"got {value!r}")
    numeric = pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
    if not (numeric or pa.types.is_temporal(dtype)):
        return
    typed = []
    for end in ends:
        if end is None:
            typed.append(None)
            continue
        try:
            typed.append(pa.array([end]).cast(dtype)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            kind = "number" if numeric else "time"
            raise InvalidArgumentError(f"the condition {name}={value!r} cannot match column {name!r} "
                                       f"({dtype}): {end!r} is not a {kind} of that type; give a "
                                       f"{kind} or a (low, high) range") from exc
    if is_range and None not in typed and typed[0] > typed[1]:
        raise InvalidArgumentError(f"the condition {name}={value!r} is an empty range (low end above "
                                   f"high end); write ({ends[1]!r}, {ends[0]!r})")

__all__ = ["MIN_TRAINING_ROWS", "SmallTrainingWarning", "Synthesizer", "column_role", "load", "register"]

_MODELS: dict[str, type[Synthesizer]] = {}
LAZY_MODELS: dict[str, str] = {"TVAE": "datakiln.synth.neural.tvae", "CTGAN": "datakiln.synth.neural.ctgan",
                               "FlowMatching": "datakiln.synth.neural.flow",
                               "ConditionalGAN": "datakiln.synth.images.gan",
                               "ConvVAE": "datakiln.synth.images.convvae"}
"""Model type → module that registers it when imported (models that load torch on use)."""

MIN_TRAINING_ROWS = 50
"""Fewer training rows than this make a synthesizer warn (:class:`SmallTrainingWarning`) and the
evaluation's privacy section flag it: a model of a handful of rows mostly replays them (one
row: every sample is an exact copy). 50 rows is where a copula's quantiles and correlations
start to generalise rather than memorise."""


class SmallTrainingWarning(UserWarning):
    """A synthesizer was fitted on fewer than :data:`MIN_TRAINING_ROWS` rows: expect copies."""


def column_role(kind: str, dtype: pa.DataType) -> str:
    """How a tabular model treats a column of schema ``kind`` and Arrow ``dtype``: numeric,
    categorical, text, identifier or pii (the copula and the neural models share this)."""
    if kind in ("identifier", "pii"):
        return kind
    if kind == "text" and (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)):
        return "text"
    numeric = (pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
               or pa.types.is_temporal(dtype))
    return "numeric" if numeric and kind != "categorical" else "categorical"


def register(cls: type[Synthesizer]) -> type[Synthesizer]:
    """Class decorator: make ``cls`` loadable by :func:`load` under its class name."""
    _MODELS[cls.__name__] = cls
    return cls


class Synthesizer:
    """Base class of synthesizers; see the module docstring for the contract."""

    schema_: pa.Schema
    _state_version: ClassVar[int] = 1

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments as stored by ``__init__``."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- the contract ------------------------------------------------------------------------
    def fit(self, data: Any, on_progress: Callable[[int], None] | None = None) -> Synthesizer:
        """Learn from ``data`` (Dataset, Arrow table or pandas DataFrame); returns ``self``.

        ``on_progress(rows)`` is called as batches are processed (once per pass and batch).
        """
        from datakiln.transform.base import schema_of

        self.schema_ = schema_of(data)
        self._on_progress = on_progress
        started = time.perf_counter()
        log.info("fitting %s on %d columns", type(self).__name__, len(self.schema_))
        try:
            self._fit(data)
        finally:
            self._on_progress = None
        log.info("fitted %s in %.2f s", type(self).__name__, time.perf_counter() - started)
        return self

    def _check_sample_args(self, n: int, conditions: dict[str, Any] | None, seed: Any = None) -> None:
        if not hasattr(self, "schema_"):
            raise InvalidArgumentError(f"{type(self).__name__} is not fitted yet; call fit first")
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise InvalidArgumentError(f"n must be a whole number >= 0, got {n!r}")
        generator = (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)
        if seed is not None and not isinstance(seed, generator) and (
                not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
            raise InvalidArgumentError(f"seed must be None, a whole number >= 0 or a numpy Generator, "
                                       f"got {seed!r:.40}")
        unknown = sorted(set(conditions or {}) - set(self.schema_.names))
        if unknown:
            raise InvalidArgumentError(f"conditions name unknown columns {unknown}; the columns "
                                       f"are {self.schema_.names}")
        for name, value in (conditions or {}).items():
            _check_condition(name, value, self.schema_.field(name).type)

    def sample(self, n: int, conditions: dict[str, Any] | None = None,
               seed: int | None = None) -> pa.Table:
        """``n`` new rows with the training schema; ``conditions`` fix or bound columns."""
        self._check_sample_args(n, conditions, seed)
        log.info("sampling %s rows from %s (conditions on: %s)", f"{int(n):,}", type(self).__name__,
                 ", ".join(conditions or {}) or "none")
        table = self._sample(int(n), dict(conditions or {}), np.random.default_rng(seed))
        schema = self.output_schema()
        return table.select(schema.names).cast(schema)

    def sample_batches(self, n: int, batch_rows: int = 100_000, conditions: dict[str, Any] | None = None,
                       seed: int | None = None) -> Iterator[pa.Table]:
        """The rows of ``sample(n, conditions, seed)`` as tables of ``batch_rows`` rows (bounded memory)."""
        self._check_sample_args(n, conditions, seed)
        if batch_rows < 1:
            raise InvalidArgumentError(f"batch_rows must be at least 1, got {batch_rows!r}")
        schema = self.output_schema()
        rng = np.random.default_rng(seed)
        log.info("sampling %s rows from %s in batches of %s (conditions on: %s)", f"{int(n):,}",
                 type(self).__name__, f"{int(batch_rows):,}", ", ".join(conditions or {}) or "none")
        for table in self._batches(int(n), int(batch_rows), dict(conditions or {}), rng):
            yield table.select(schema.names).cast(schema)

    def output_schema(self) -> pa.Schema:
        """The schema of sampled tables (the training schema unless a model drops columns)."""
        return self.schema_

    def _batches(self, n: int, batch_rows: int, conditions: dict[str, Any],
                 rng: np.random.Generator) -> Iterator[pa.Table]:
        """Default: one sample sliced; models that can, generate batch by batch."""
        table = self._sample(n, conditions, rng)
        for start in range(0, table.num_rows, batch_rows):
            yield table.slice(start, batch_rows)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False,
             inputs: Iterable[str | os.PathLike[str]] = (), encryption: Any = None) -> None:
        """Write the fitted model to ``path`` (a ``.kiln`` model file), atomically.

        An existing file at ``path`` is replaced only if it is a datakiln model file, or
        with ``overwrite=True``; a path among ``inputs`` (e.g. the training files) is always
        refused with :class:`~datakiln.errors.OutputExistsError`. ``encryption`` (a
        :class:`datakiln.privacy.EncryptionConfig`) writes it AES-GCM encrypted; load it with
        ``datakiln.synth.load(path, decryption=DecryptionConfig(...))``.
        """
        if not hasattr(self, "schema_"):
            raise InvalidArgumentError(f"{type(self).__name__} is not fitted yet; nothing to save")
        state, arrays = self._to_state()
        schema = self.schema_.serialize().to_pybytes()
        payload = {"params": self.get_params(), "state": state, "state_version": self._state_version}
        write_model(path, ModelData(type(self).__name__, payload,
                                    {**arrays, "__schema__": np.frombuffer(schema, dtype=np.uint8)}),
                    overwrite=overwrite, inputs=inputs, encryption=encryption)

    # -- for subclasses ---------------------------------------------------------------------
    def _fit(self, data: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _sample(self, n: int, conditions: dict[str, Any],
                rng: np.random.Generator) -> pa.Table:  # pragma: no cover - abstract
        raise NotImplementedError

    def _to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:  # pragma: no cover
        raise NotImplementedError

    def _from_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError


def load(path: str | os.PathLike[str], *, decryption: Any = None) -> Synthesizer:
    """Read a model file written by :meth:`Synthesizer.save` (any registered model type);
    ``decryption`` (a :class:`datakiln.privacy.DecryptionConfig`) opens an encrypted one."""
    data = read_model(path, decryption=decryption)
    kind = _MODELS.get(data.model)
    if kind is None and data.model in LAZY_MODELS:
        import importlib

        importlib.import_module(LAZY_MODELS[data.model])
        kind = _MODELS.get(data.model)
    if kind is None:
        raise ModelFormatError(f"{str(path)!r} holds a {data.model!r} model, which this datakiln "
                               f"does not know (known: {sorted(_MODELS)}); upgrade datakiln")
    payload = data.payload
    if payload.get("state_version", 1) > kind._state_version:
        raise ModelFormatError(f"{str(path)!r}: {data.model} state version "
                               f"{payload.get('state_version')} is newer than this datakiln reads")
    try:
        model = kind(**payload.get("params", {}))
        arrays = dict(data.arrays)
        schema_bytes = arrays.pop("__schema__").tobytes()
        model.schema_ = pa.ipc.read_schema(pa.py_buffer(schema_bytes))
        model._from_state(payload.get("state", {}), arrays)
    except (KeyError, TypeError, ValueError, pa.ArrowInvalid) as exc:
        raise ModelFormatError(f"{str(path)!r}: the {data.model} model cannot be rebuilt ({exc})") from exc
    return model
