"""From a platform's configuration to what its transport needs to connect.

The one place that builds transport objects from the configuration, so that ``config`` does not
depend on ``transports``: delivery (the uploader) and ``check --connect`` call it.
"""

from __future__ import annotations

import posixpath

from stockbridge.config.models import PlatformConfig
from stockbridge.config.secrets import resolve_password
from stockbridge.transports.base import TransportSettings


def transport_settings(name: str, platform: PlatformConfig) -> TransportSettings:
    """What a transport needs for ``platform``; resolves the password now."""
    return TransportSettings(
        platform=name,
        protocol=platform.protocol,
        host=platform.host,
        port=platform.effective_port,
        username=platform.username,
        password=resolve_password(platform),
        key_file=platform.key_file,
        remote_dir=platform.remote_dir,
        path=platform.path,
        ca_file=platform.ca_file,
        host_key=tuple(platform.host_key) if isinstance(platform.host_key, list) else platform.host_key,
        known_hosts=platform.known_hosts,
        atomic_rename=platform.effective_atomic_rename,
        timeout=platform.timeout_seconds,
        sftp_request_size=platform.sftp_request_size,
    )


def join_remote(base: str, sub: str | None) -> str:
    """A remote folder under the platform's ``base`` (or ``sub`` itself when it is absolute)."""
    if not sub:
        return base
    if sub.startswith("/"):
        return sub
    return posixpath.join(base or "/", sub)
