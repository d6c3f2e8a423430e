"""The command line: parsing, and turning results and errors into text and exit codes."""

from stockbridge.cli.main import main

__all__ = ["main"]
