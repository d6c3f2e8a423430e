"""``[web]``: the local web page and its API (stockbridge/web/, docs/api.md)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from stockbridge.config.base import _Model

#: The page is on by default, on loopback only: one browser tab away, and no one else's.
DEFAULT_LISTEN = "127.0.0.1:8765"


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8765"`` → ("127.0.0.1", 8765); ``"[::1]:8765"`` → ("::1", 8765). Raises ValueError."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f'expected "ADDRESS:PORT", e.g. "{DEFAULT_LISTEN}", got "{listen}"')
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is not between 1 and 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def is_loopback(host: str) -> bool:
    """Only this machine can reach it: 127.0.0.0/8, ::1 or "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebConfig(_Model):
    listen: str = Field(
        DEFAULT_LISTEN,
        description='Where `stockbridge run` serves the web page, "ADDRESS:PORT"; "" turns it off.'
        " Any address but loopback (127.0.0.1, ::1) needs allow_remote and TLS.",
    )
    allow_remote: bool = Field(
        False,
        description="Allow listen on an address other machines can reach (then tls_cert and tls_key"
        " are required). Anyone who has the token can act on your uploads.",
    )
    tls_cert: Path | None = Field(
        None, strict=False, description="TLS certificate (PEM) for a page served beyond this machine."
    )
    tls_key: Path | None = Field(
        None, strict=False, description="The private key (PEM) of tls_cert; keep it mode 0600."
    )

    @field_validator("listen")
    @classmethod
    def _listen_shape(cls, value: str) -> str:
        if value:
            split_listen(value)
        return value

    @model_validator(mode="after")
    def _remote_needs_tls(self) -> WebConfig:
        if not self.listen:
            return self
        host, _port = split_listen(self.listen)
        if is_loopback(host):
            if (self.tls_cert is None) != (self.tls_key is None):
                raise ValueError("tls_cert and tls_key go together: give both or neither")
            return self
        if not self.allow_remote:
            raise ValueError(
                f'listen = "{self.listen}" is reachable from other machines: set allow_remote = true'
                " (with tls_cert and tls_key), or listen on 127.0.0.1"
            )
        missing = [key for key in ("tls_cert", "tls_key") if getattr(self, key) is None]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required: a page served beyond this machine needs TLS")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.listen)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None
