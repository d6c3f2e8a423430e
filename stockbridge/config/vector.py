"""The vector table, ``[platforms.NAME.rules.vector]``: which vectors a platform takes and how a
vector and its preview travel (issue 15; the agencies' facts are in the presets).

A platform whose table lists no ``formats`` takes no vectors: an EPS sent where it is not wanted
costs the contributor's standing with the agency, so vectors go only where asked for.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from stockbridge.assets import mediatypes
from stockbridge.config.base import _Model


class VectorRules(_Model):
    formats: list[str] = Field(
        default_factory=list,
        description='Vector formats the platform takes ("eps", "ai", "svg"); empty: it takes no vectors.',
    )
    max_illustrator_version: float | None = Field(
        None,
        gt=0,
        description="EPS/AI: the newest Illustrator format level taken, from the header's"
        ' "%%Creator: Adobe Illustrator(R) N" (10: saved as Illustrator 8 or 10 EPS); unset: any.',
    )
    unknown_version: Literal["send", "hold"] = Field(
        "send",
        description="A file whose Illustrator level is not checkable (another program wrote it):"
        ' "send" it with a note in explain, or "hold" it.',
    )
    min_megapixels: float | None = Field(
        None, gt=0, description="Smaller drawings (bounding box or artboard, 1 pt = 1 pixel) are rejected."
    )
    max_megapixels: float | None = Field(
        None, gt=0, description="Larger drawings are rejected (never scaled: that is the artist's call)."
    )
    megapixel_formats: list[str] | None = Field(
        None,
        description="The formats min/max_megapixels apply to (e.g. AI and EPS only, when SVG has no size limit); unset: all.",
    )
    max_file_mb: float | None = Field(
        None,
        gt=0,
        description='Larger vector files are rejected (MB = 10^6 bytes); with travel = "zip": the zip.',
    )
    preview: Literal["required", "optional", "none"] = Field(
        "optional",
        description='"required": held until a JPEG/PNG of the same stem is beside the vector;'
        ' "optional": sent with it when there (travel "pair" or "zip"); "none": never sent.',
    )
    preview_min_megapixels: float | None = Field(
        None, gt=0, description="A smaller preview is not taken: the vector is held for a bigger one."
    )
    preview_min_edge: int | None = Field(
        None, ge=1, description="The preview's shorter edge must be at least this many pixels (e.g. 2000)."
    )
    travel: Literal["vector", "pair", "zip"] = Field(
        "vector",
        description='"vector": the vector file alone; "pair": the vector and its preview side by side,'
        ' same stem; "zip": one zip of both, named after the stem.',
    )

    @field_validator("formats", "megapixel_formats")
    @classmethod
    def _vector_formats(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = []
        for item in value:
            media = mediatypes.from_config(item)
            if media is None or media.kind != mediatypes.VECTOR:
                known = ", ".join(mediatypes.names(mediatypes.VECTOR))
                raise ValueError(f"unknown vector format {item!r}; known: {known}")
            names.append(media.name)
        return names

    @model_validator(mode="after")
    def _consistent(self) -> VectorRules:
        if self.min_megapixels and self.max_megapixels and self.min_megapixels > self.max_megapixels:
            raise ValueError("min_megapixels is larger than max_megapixels")
        if self.preview == "required" and self.travel == "vector":
            raise ValueError(
                'preview = "required" needs travel = "pair" or "zip" (the preview must go along)'
            )
        return self

    @property
    def takes_preview(self) -> bool:
        """True when a preview found beside the vector goes along."""
        return self.preview != "none" and self.travel != "vector"
