"""Cleaning: type repair, duplicates, missing values and outliers, with a report of every change."""

from datakiln.clean.cleaner import Cleaner, default_steps
from datakiln.clean.dedup import DropDuplicates
from datakiln.clean.impute import Impute
from datakiln.clean.outliers import Outliers
from datakiln.clean.repair import RepairTypes
from datakiln.clean.report import CleaningReport, StepReport

__all__ = ["Cleaner", "CleaningReport", "DropDuplicates", "Impute", "Outliers", "RepairTypes",
           "StepReport", "default_steps"]
