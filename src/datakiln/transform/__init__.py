"""Reversible column transforms shared by cleaning, synthesis and balancing.

Every transform streams its ``fit`` over batches, changes columns (never rows), inverts
exactly where the arithmetic allows, and saves as JSON (:meth:`Transform.save`,
:func:`load`).
"""

from datakiln.transform.base import Transform, load
from datakiln.transform.datetime import DatetimeEncoder
from datakiln.transform.encode import OneHotEncoder, OrdinalEncoder
from datakiln.transform.missing import MissingIndicator
from datakiln.transform.scale import MinMaxScaler, RobustScaler, StandardScaler

__all__ = [
    "DatetimeEncoder",
    "MinMaxScaler",
    "MissingIndicator",
    "OneHotEncoder",
    "OrdinalEncoder",
    "RobustScaler",
    "StandardScaler",
    "Transform",
    "load",
]
