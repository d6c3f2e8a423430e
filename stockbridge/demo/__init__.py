"""The self-contained demo: local servers, sample images, one run."""
