"""Planning: what each platform will get, as a pure function of (asset facts, rules).

``evaluate`` never touches a file or the network, so ``explain`` can print exactly what ``run`` will do
and the rules can be tested table by table. A verdict is data, not an exception:

- ``accept``: send it, possibly with ``changes`` (e.g. keywords trimmed for this platform's copy);
- ``hold``: the user can fix it (add keywords, set a title) and export again;
- ``reject``: no change stockbridge may make fixes it (too few pixels, wrong format, too large).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from stockbridge.config import RulesConfig

ACCEPT: Literal["accept"] = "accept"
HOLD: Literal["hold"] = "hold"
REJECT: Literal["reject"] = "reject"

_TYPE_NAMES = {"jpeg": "JPEG", "png": "PNG", "tiff": "TIFF"}


@dataclass(frozen=True, slots=True)
class AssetFacts:
    """What planning needs to know about one source file."""

    file_type: str | None  # sniffed from content: "jpeg", "png", "tiff" or None
    size_bytes: int
    width: int | None = None
    height: int | None = None
    title: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()

    @property
    def megapixels(self) -> float | None:
        if not self.width or not self.height:
            return None
        return self.width * self.height / 1_000_000


@dataclass(frozen=True, slots=True)
class Verdict:
    platform: str
    verdict: Literal["accept", "hold", "reject"]
    reasons: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    #: The keywords this platform's copy carries when they differ from the source; None = unchanged.
    keywords: tuple[str, ...] | None = field(default=None)

    @property
    def needs_copy(self) -> bool:
        """True when the file sent must differ from the source (a derived copy)."""
        return self.keywords is not None


def evaluate(platform: str, facts: AssetFacts, rules: RulesConfig) -> Verdict:
    rejects: list[str] = []
    holds: list[str] = []
    changes: list[str] = []
    keywords: tuple[str, ...] | None = None

    type_name = _TYPE_NAMES.get(facts.file_type or "", (facts.file_type or "unknown").upper())
    if rules.formats is not None and facts.file_type not in rules.formats:
        accepted = ", ".join(_TYPE_NAMES.get(item, item.upper()) for item in rules.formats)
        rejects.append(f"{type_name} file, {platform} takes only {accepted}")

    if rules.min_megapixels is not None:
        megapixels = facts.megapixels
        if megapixels is None:
            rejects.append(f"pixel size unknown, {platform} needs at least {rules.min_megapixels:.1f} MP")
        elif megapixels < rules.min_megapixels:
            rejects.append(
                f"{_floor1(megapixels)} MP ({facts.width}×{facts.height}), {platform} needs at least "
                f"{rules.min_megapixels:.1f} MP; stockbridge never upscales"
            )

    if rules.max_file_mb is not None and facts.size_bytes > rules.max_file_mb * 1_000_000:
        rejects.append(
            f"{facts.size_bytes / 1_000_000:.1f} MB, {platform} takes at most {rules.max_file_mb:g} MB"
        )

    count = len(facts.keywords)
    if count < rules.keywords.min:
        holds.append(
            f"{_plural(count, 'keyword')}, {platform} needs at least {rules.keywords.min}; "
            "add keywords in your editor and export again"
        )
    if rules.keywords.max is not None and count > rules.keywords.max:
        keywords = tuple(facts.keywords[: rules.keywords.max])
        changes.append(f"keywords {count} → {rules.keywords.max} (first {rules.keywords.max} kept)")

    _check_text(platform, "title", facts.title, rules.title.required, rules.title.max_chars, holds)
    _check_text(
        platform,
        "description",
        facts.description,
        rules.description.required,
        rules.description.max_chars,
        holds,
    )

    if rejects:
        return Verdict(platform, REJECT, tuple(rejects + holds))
    if holds:
        return Verdict(platform, HOLD, tuple(holds), tuple(changes), keywords)
    return Verdict(platform, ACCEPT, (), tuple(changes), keywords)


def evaluate_all(facts: AssetFacts, rules_by_platform: dict[str, RulesConfig]) -> list[Verdict]:
    return [evaluate(name, facts, rules) for name, rules in rules_by_platform.items()]


def _check_text(
    platform: str, what: str, value: str | None, required: bool, max_chars: int | None, holds: list[str]
) -> None:
    text = (value or "").strip()
    if required and not text:
        holds.append(f"no {what}, {platform} requires one; set the {what} in your editor and export again")
    elif max_chars is not None and len(text) > max_chars:
        holds.append(
            f"{what} is {len(text)} characters, {platform} allows {max_chars}; shorten it and export again"
        )


def _floor1(value: float) -> str:
    # Round down so "3.99 MP" never shows as "4.0 MP, needs at least 4.0 MP".
    return f"{int(value * 10) / 10:.1f}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def describe(verdicts: Sequence[Verdict]) -> str:
    """One line per platform, for logs."""
    return "; ".join(
        f"{v.platform}: {v.verdict}" + (f" ({', '.join(v.reasons)})" if v.reasons else "") for v in verdicts
    )
