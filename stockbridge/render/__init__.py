"""Rendering: the derived copy a platform needs (resize, convert, re-encode) and pixel checks."""
