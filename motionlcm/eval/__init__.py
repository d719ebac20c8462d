"""Evaluation: metrics as pure functions, and the loops that feed them."""
