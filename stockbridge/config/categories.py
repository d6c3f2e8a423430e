"""The tables for AI-generated work, categories and per-file flags (issue 15).

Two sides, like ``[editorial]`` and ``rules.editorial``:

- what a *file* says, read the same way for every platform: ``[ai]`` (is it AI-generated),
  ``[categories]`` (which category it is in), ``[illustration]`` and ``[mature]`` (flags);
- what a *platform* does with it, in its rules: ``[platforms.NAME.rules.ai]`` (reject or accept,
  and the manual steps and CSV cells an accepted AI file needs) and
  ``[platforms.NAME.rules.categories]`` (the agency's own category list and the table that maps
  your categories onto it). The presets carry the agencies' tables, with their sources.
"""

from __future__ import annotations

import difflib
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from stockbridge.config.base import _Model

#: A tag as ExifTool names it with -G1: GROUP:TAG, both parts starting with a letter ("-g1:2"
#: would be an ExifTool option, decisions.md E-2).
_TAG = re.compile(r"[A-Za-z][A-Za-z0-9-]*:[A-Za-z][A-Za-z0-9-]*")

#: IPTC Digital Source Type codes (cv.iptc.org/newscodes/digitalsourcetype/) that mean "made by
#: generative AI": wholly, and composited with generated parts. ``compositeSynthetic`` and
#: ``algorithmicMedia`` (made by an algorithm without training data, e.g. fractals) are not
#: generative AI; add them in ``[ai] source_types`` if your agency counts them (decisions.md C-1).
DEFAULT_AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia")


def _check_tag(value: str | None) -> str | None:
    if value is not None and not _TAG.fullmatch(value):
        raise ValueError(f'expected a tag name like "XMP-photoshop:Category", got {value!r}')
    return value


def _check_tags(value: list[str]) -> list[str]:
    for tag in value:
        _check_tag(tag)
    return value


class AiConfig(_Model):
    """How stockbridge tells that a file was made with generative AI."""

    source_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_AI_SOURCE_TYPES),
        description="IPTC Digital Source Type codes (XMP-iptcExt:DigitalSourceType, the code or its full"
        " cv.iptc.org URI) that mark a file AI-generated; add compositeSynthetic or algorithmicMedia if"
        " your agencies count those.",
    )
    keywords: list[str] = Field(
        default_factory=list,
        description='A keyword from this list (any case) marks a file AI-generated, e.g. ["ai-generated"].',
    )
    field: str | None = Field(
        None,
        description='A metadata tag (e.g. "XMP-xmp:CreatorTool") whose value marks it AI-generated ...',
    )
    contains: str | None = Field(
        None, description="... when it contains this text (any case); unset: any value in that tag."
    )

    _field_shape = field_validator("field")(_check_tag)

    @field_validator("source_types")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", code.rsplit("/", 1)[-1]):
                raise ValueError(f'expected an IPTC code like "trainedAlgorithmicMedia", got {code!r}')
        return value


class CategoriesConfig(_Model):
    """Where a file's own category comes from (the first that gives one wins)."""

    fields: list[str] = Field(
        default_factory=lambda: ["XMP-photoshop:Category", "XMP-photoshop:SupplementalCategories"],
        description="Metadata tags holding the category, in order; every value counts (a list tag"
        " such as SupplementalCategories gives several).",
    )
    hierarchy: str | None = Field(
        "category",
        description="A hierarchical keyword (XMP-lr:HierarchicalSubject) under this top level names the"
        ' category: "category|Nature" gives "Nature". Unset: hierarchical keywords are not looked at.',
    )
    folders: dict[str, str] = Field(
        default_factory=dict,
        description="Sub-folder of the watch folder → category, for files whose metadata names none, e.g."
        ' { "nature" = "Nature", "city/night" = "Buildings" } (folder names in any case).',
    )

    _fields_shape = field_validator("fields")(_check_tags)

    @field_validator("hierarchy")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "|" in value):
            raise ValueError('expected one level of a hierarchical keyword, e.g. "category"')
        return value


class FlagConfig(_Model):
    """How stockbridge tells that a file carries a flag (illustration, mature content)."""

    folder: str | None = Field(None, description="Files in this sub-folder of the watch folder ...")
    keywords: list[str] = Field(default_factory=list, description="... or with a keyword from this list ...")
    field: str | None = Field(None, description="... or whose metadata tag (GROUP:TAG) ...")
    contains: str | None = Field(
        None, description="... contains this text (any case; unset: any value) carry the flag."
    )

    _field_shape = field_validator("field")(_check_tag)


class AiRule(_Model):
    """What a platform does with an AI-generated file."""

    generated: Literal["accept", "reject"] = Field(
        "accept", description='AI-generated files: "accept" them, or "reject" them with the policy named.'
    )
    policy: str | None = Field(
        None,
        description='generated = "reject": where the agency says so, named in the reason'
        " (a help page address; the presets name theirs).",
    )
    steps: list[str] = Field(
        default_factory=list,
        description="Manual steps an accepted AI file needs on the agency's website (listed per file in"
        ' `status`), e.g. the checkbox "Created using generative AI tools".',
    )
    csv: dict[str, str] = Field(
        default_factory=dict,
        description="CSV cells for AI files only, header → value (other files take csv.values).",
    )
    avoid_terms: list[str] = Field(
        default_factory=list,
        description="Words the agency asks to keep out of an AI file's title and keywords: a keyword that"
        " is one of them is dropped from this platform's copy; a title or description that contains one"
        " is kept, and changing it is listed as a manual step.",
    )


class CategoryRule(_Model):
    """The agency's categories, and how your categories map onto them."""

    required: bool = Field(
        False, description="A file with no category that maps to one of `values` is held, with the list."
    )
    max: int = Field(1, ge=1, le=10, description="How many categories the agency takes per file.")
    values: list[str] = Field(
        default_factory=list,
        description="The agency's category names or numbers, as its CSV wants them; empty: any text.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description='A name for each value that is a number: { "11" = "Landscapes" }.'
    )
    map: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description='Your category (any case) → the agency\'s value(s): { "Nature" = ["Nature",'
        ' "Parks/Outdoor"] }. A category that is already one of `values` (or a label) needs no entry.',
    )
    manual: str | None = Field(
        None,
        description="Categories are set on the agency's website: this step is listed per file in"
        " `status`, with the file's categories.",
    )

    @model_validator(mode="after")
    def _targets_known(self) -> CategoryRule:
        if not self.values:
            return self
        known = set(self.values)
        for source, targets in self.map.items():
            for target in [targets] if isinstance(targets, str) else targets:
                if target not in known:
                    close = difflib.get_close_matches(target, self.values, n=1)
                    hint = f'; did you mean "{close[0]}"?' if close else ""
                    raise ValueError(f"map.{source}: {target!r} is not one of values{hint}")
        unknown = [value for value in self.labels if value not in known]
        if unknown:
            raise ValueError(f"labels: {unknown[0]!r} is not one of values")
        return self
