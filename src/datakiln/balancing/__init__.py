"""Class balancing over Datasets of any size: imbalanced-learn's samplers, synth and auto."""

from datakiln.balancing.balancer import Balancer, BalanceReport, balance
from datakiln.balancing.methods import METHODS

__all__ = ["METHODS", "BalanceReport", "Balancer", "balance"]
