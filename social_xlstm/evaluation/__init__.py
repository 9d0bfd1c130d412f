"""Evaluation of a run directory: metrics per horizon, target and sensor; predictions; plots."""
