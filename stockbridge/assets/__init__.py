"""Assets: a settled file becomes a private copy with its hash, type and metadata."""
