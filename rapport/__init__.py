"""Rapport: keeps customer relationships alive by rule."""

__version__ = "0.1.0"
