"""Runnable examples: python -m gradcore.examples.<name>."""
