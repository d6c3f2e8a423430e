"""Intake: watching the export folder, settling, scanning, and the files not taken."""
