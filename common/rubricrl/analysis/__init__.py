"""Analyses of training runs (reward-hacking mining)."""
