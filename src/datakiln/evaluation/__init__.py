"""Evaluation of synthetic or augmented data: fidelity, ML utility, privacy risk."""

from datakiln.evaluation.suite import EvaluationReport, evaluate

__all__ = ["EvaluationReport", "evaluate"]
