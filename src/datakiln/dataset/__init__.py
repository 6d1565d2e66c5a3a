"""The lazy Dataset, its executor and its streaming profile."""

from datakiln.dataset.dataset import Dataset
from datakiln.dataset.profile import ColumnProfile, Profile

__all__ = ["ColumnProfile", "Dataset", "Profile"]
