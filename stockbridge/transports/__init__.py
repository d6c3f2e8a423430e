"""Transports, one module per protocol; importing this package registers them all."""

from stockbridge.transports import folder, ftp, sftp  # noqa: F401  (registration)
from stockbridge.transports.base import (
    TEMP_SUFFIX,
    PutResult,
    Transport,
    TransportSettings,
    open_transport,
    protocols,
)

__all__ = ["TEMP_SUFFIX", "PutResult", "Transport", "TransportSettings", "open_transport", "protocols"]
