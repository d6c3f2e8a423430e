"""Shared fixtures. Servers (tests/servers.py) and images (tests/images.py) live in plugins."""

pytest_plugins = ["tests.servers", "tests.images"]
