"""Declarative pipelines with cached stages (``kiln run``): see :mod:`datakiln.pipeline.run`."""

from datakiln.pipeline.run import Pipeline, RunReport, StageError, StageResult

__all__ = ["Pipeline", "RunReport", "StageError", "StageResult"]
