"""Transports, one module per protocol, registered by name (see base.py for the interface)."""

from stockbridge.transports.base import (
    TEMP_SUFFIX,
    PutResult,
    Transport,
    TransportSettings,
    open_transport,
    protocols,
)

__all__ = ["TEMP_SUFFIX", "PutResult", "Transport", "TransportSettings", "open_transport", "protocols"]
