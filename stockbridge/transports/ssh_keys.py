"""SSH host keys: fingerprints as ``ssh-keygen -lf`` prints them, and the pins a user writes."""

from __future__ import annotations

import base64
import hashlib

import paramiko

#: known_hosts key type -> host key algorithms that prove it (an RSA key signs with SHA-2 today).
KEY_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}


def fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as ``ssh-keygen -lf`` prints it: ``SHA256:`` + unpadded base64."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def normalise_fingerprint(value: str) -> str:
    value = value.strip()
    if value[:7].upper() == "SHA256:":
        value = value[7:]
    return value.rstrip("=")


#: ``ssh-keygen -lf`` names key types in capitals at the end of its line.
KEYGEN_TYPES = {
    "ED25519": "ssh-ed25519",
    "RSA": "ssh-rsa",
    "ECDSA": "ecdsa-sha2-nistp256",
    "DSA": "ssh-dss",
}
#: Host key types a server may hold (ed25519, three ECDSA curves, RSA, DSA): bounds the retries.
MAX_HOST_KEY_TRIES = 6


def key_type_of(algorithm: str) -> str:
    """The key type behind a host key algorithm: RSA keys sign as rsa-sha2-512/256 too."""
    return "ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm


def parse_host_key_pins(value: str | list[str] | tuple[str, ...] | None) -> list[tuple[str, str | None]]:
    """``host_key`` as (fingerprint, key type or None) pairs. Takes one pin or a list, each a bare
    ``SHA256:...`` or a whole ``ssh-keygen -lf`` line (``256 SHA256:... host (ED25519)``)."""
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    pins: list[tuple[str, str | None]] = []
    for text in values:
        tokens = text.split()
        found = next((token for token in tokens if token[:7].upper() == "SHA256:"), None)
        if found is None:
            continue
        key_type = None
        if tokens and tokens[-1].startswith("(") and tokens[-1].endswith(")"):
            key_type = KEYGEN_TYPES.get(tokens[-1][1:-1].upper())
        pins.append((found, key_type))
    return pins
