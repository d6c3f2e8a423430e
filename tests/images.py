"""Fixtures: generated images with real metadata (filled in by the metadata work)."""
