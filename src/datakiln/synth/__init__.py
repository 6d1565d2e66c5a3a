"""Synthesizers: the contract (:class:`Synthesizer`), safe model files and :func:`load`."""

from datakiln.synth.base import MIN_TRAINING_ROWS, SmallTrainingWarning, Synthesizer, load, register
from datakiln.synth.copula import GaussianCopula
from datakiln.synth.dp.mst import MSTSynthesizer
from datakiln.synth.modelfile import ModelData, read_model, write_model
from datakiln.synth.neural.base import NeuralSynthesizer
from datakiln.synth.pca import PCASynthesizer

__all__ = ["CTGAN", "MIN_TRAINING_ROWS", "TVAE", "ConditionalGAN", "ConvVAE", "FlowMatching",
           "GaussianCopula",
           "MSTSynthesizer", "ModelData", "NeuralSynthesizer", "PCASynthesizer", "SmallTrainingWarning",
           "Synthesizer", "load", "read_model", "register", "write_model"]


def __getattr__(name: str) -> object:  # the torch models load torch only when first used
    if name in ("TVAE", "CTGAN", "FlowMatching"):
        from datakiln.synth import neural

        return getattr(neural, name)
    if name in ("ConditionalGAN", "ConvVAE"):  # image models (torch on use)
        from datakiln.synth import images

        return getattr(images, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
