"""Event-sourced streaming pipeline for AWS."""

__version__ = "0.1.0"
