"""Supplier-behaviour simulator with known churn probabilities (placeholder docstring)."""

from features.simulator.run import SimulationConfig, SimulationSummary, simulate

__all__ = ["SimulationConfig", "SimulationSummary", "simulate"]
