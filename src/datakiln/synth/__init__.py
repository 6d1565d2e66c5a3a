"""Synthesizers: the contract (:class:`Synthesizer`), safe model files and :func:`load`."""

from datakiln.synth.base import MIN_TRAINING_ROWS, SmallTrainingWarning, Synthesizer, load, register
from datakiln.synth.copula import GaussianCopula
from datakiln.synth.dp.mst import MSTSynthesizer
from datakiln.synth.modelfile import ModelData, read_model, write_model

__all__ = ["MIN_TRAINING_ROWS", "GaussianCopula", "MSTSynthesizer", "ModelData", "SmallTrainingWarning",
           "Synthesizer", "load", "read_model", "register", "write_model"]
