"""The strict base of every configuration table, and the value checks tables share.

Package-internal (the leading underscores): the tables are in ``models.py`` and ``rules.py``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    # Unknown keys are errors (with a "did you mean"), never silently ignored: a typo in
    # `max_file_mb` must not quietly switch a limit off.
    # Strict: TOML has real types, so "yes" for a boolean or "10" for a number is a mistake to
    # report, not to guess at. Paths are the exception (TOML has no path type).
    # No inf/nan: TOML has them, but an infinite timeout overflows the socket layer at connect time.
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, strict=True, allow_inf_nan=False
    )


def _check_remote_dir(value: str | None) -> str | None:
    if value is None:
        return None
    if any(char in value for char in "\r\n\0"):
        raise ValueError("must not contain line breaks or NUL")
    if ".." in value.replace("\\", "/").split("/"):
        # A folder platform would write outside its path; a server folder outside the upload area.
        raise ValueError(
            'must not contain ".."; give the upload folder from the login folder or the root, e.g. "/uploads"'
        )
    return value
