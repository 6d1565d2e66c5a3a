"""Synthesizers: the contract (:class:`Synthesizer`), safe model files and :func:`load`."""

from datakiln.synth.base import Synthesizer, load, register
from datakiln.synth.copula import GaussianCopula
from datakiln.synth.modelfile import ModelData, read_model, write_model

__all__ = ["GaussianCopula", "ModelData", "Synthesizer", "load", "read_model", "register", "write_model"]
