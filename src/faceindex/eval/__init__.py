"""Evaluation: metrics for verification and identification, and the protocols that use them."""
