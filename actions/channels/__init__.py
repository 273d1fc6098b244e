"""Delivery channels, one adapter per file, all behind the `Sender` protocol."""
