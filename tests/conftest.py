"""Shared fixtures. Servers (tests/servers.py, and ProFTPD / Pure-FTPd in tests/thirdparty.py) and images
(tests/images.py) live in plugins."""

pytest_plugins = ["tests.servers", "tests.thirdparty", "tests.images"]
