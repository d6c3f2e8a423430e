"""stockbridge: a headless bridge from one export folder to many stock agencies."""

__version__ = "0.1.0"
