"""Metadata through one long-lived ExifTool process."""
