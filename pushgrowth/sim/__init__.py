"""The synthetic marketplace (the World): no Dagster imports, usable from any Python code."""

from pushgrowth.sim.config import CountryCalibration, WorldConfig
from pushgrowth.sim.ground_truth import ACTION_COLUMNS
from pushgrowth.sim.world import DeliveryReceipt, World

__all__ = ["ACTION_COLUMNS", "CountryCalibration", "DeliveryReceipt", "World", "WorldConfig"]
