"""Categories and flags per file, and each platform's mapping of them (issue 15).

- :func:`file_categories`: a file's own categories and where they came from: the tags of
  ``[categories] fields`` (XMP ``photoshop:Category``, ``SupplementalCategories``), a
  hierarchical keyword ``category|Nature`` (``XMP-lr:HierarchicalSubject``), else the
  ``[categories] folders`` entry of the sub-folder it lies in;
- :func:`has_flag`: the Illustration and Mature content flags, found the way editorial files are
  (a folder, a keyword, a tag that contains a text: ``releases.is_editorial``);
- :func:`plan_categories`: what one platform's CSV gets (``rules.categories``): each category
  that is one of the agency's values or labels, else its ``map`` entry; held with the list of
  valid values when the agency requires one and none maps (decisions.md C-2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stockbridge.config.categories import CategoriesConfig, CategoryRule, FlagConfig
from stockbridge.config.models import Config
from stockbridge.rules.ai import DIGITAL_SOURCE_TYPE_TAG, tag_values
from stockbridge.rules.releases import _first_shared, _under_folder

#: Lightroom's hierarchical keywords ("category|Nature"), levels separated by "|".
HIERARCHICAL_SUBJECT_TAG = "XMP-lr:HierarchicalSubject"
#: How many valid values a hold reason shows before "… (N in all)".
SHOWN_VALUES = 8


@dataclass(frozen=True, slots=True)
class CategoryPlan:
    """What one platform's rules make of a file's categories."""

    values: tuple[str, ...] = ()  # the agency's values for this file, as its CSV wants them
    holds: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    manual: tuple[str, ...] = ()


def extra_tags(config: Config) -> tuple[str, ...]:
    """Every tag beyond ExifTool's standard read that the config's signals need, each once."""
    tags = [DIGITAL_SOURCE_TYPE_TAG, *config.categories.fields]
    if config.categories.hierarchy:
        tags.append(HIERARCHICAL_SUBJECT_TAG)
    for field in (config.editorial.field, config.ai.field, config.illustration.field, config.mature.field):
        if field:
            tags.append(field)
    return tuple(dict.fromkeys(tags))


def file_categories(
    image: Path, watch_root: Path, extra: Mapping[str, tuple[str, ...]], config: CategoriesConfig
) -> tuple[tuple[str, ...], str | None]:
    """The file's categories, in order, and where they came from ("XMP-photoshop:Category",
    'hierarchical keyword "category|…"', 'folder "nature"'); ``((), None)`` when none."""
    for tag in config.fields:
        values = _unique(tag_values(extra, tag))
        if values:
            return values, tag
    if config.hierarchy:
        top = config.hierarchy.strip().casefold()
        found = []
        for value in tag_values(extra, HIERARCHICAL_SUBJECT_TAG):
            levels = [level.strip() for level in value.split("|")]
            if len(levels) >= 2 and levels[0].casefold() == top and levels[1]:
                found.append(levels[1])
        if found:
            return _unique(found), f'hierarchical keyword "{config.hierarchy}|…"'
    # The deepest matching folder wins: "city/night" before "city".
    for folder in sorted(config.folders, key=lambda name: -len(name.strip("/").split("/"))):
        if _under_folder(image, watch_root, folder):
            return (config.folders[folder],), f'folder "{folder}"'
    return (), None


def has_flag(
    image: Path,
    watch_root: Path,
    keywords: Sequence[str],
    extra: Mapping[str, tuple[str, ...]],
    flag: FlagConfig,
) -> bool:
    """True if the file carries ``flag``: in its folder, with one of its keywords, or with its tag."""
    if flag.folder and _under_folder(image, watch_root, flag.folder):
        return True
    if _first_shared(keywords, flag.keywords) is not None:
        return True
    if flag.field:
        wanted = (flag.contains or "").strip().casefold()
        return any(wanted in value.casefold() for value in tag_values(extra, flag.field))
    return False


def plan_categories(
    platform: str, found: Sequence[str], source: str | None, rule: CategoryRule
) -> CategoryPlan:
    """``found`` (the file's categories, from ``source``) as ``platform``'s values."""
    manual: tuple[str, ...] = ()
    if rule.manual:
        named = ", ".join(found) if found else "none found in the file"
        manual = (f"{rule.manual} (the file's categories: {named})",)
    mapped, unmapped = map_categories(found, rule)
    changes: list[str] = []
    if len(mapped) > rule.max:
        changes.append(
            f"categories: {platform} takes {rule.max}, the first {rule.max} kept ({', '.join(mapped[rule.max :])} left out)"
        )
        mapped = mapped[: rule.max]
    holds: list[str] = []
    if not mapped and rule.required:
        if found:
            names = ", ".join(f'"{name}"' for name in unmapped)
            what = (
                f"category {names} (from {source}) is not"
                if len(unmapped) == 1
                else f"categories {names} (from {source}) are not"
            )
            holds.append(
                f"{what} one of {platform}'s: {valid_values(rule)};"
                f" map it in [platforms.{platform}.rules.categories.map]"
            )
        else:
            holds.append(
                f"no category, {platform} needs {_how_many(rule)} of {valid_values(rule)};"
                ' give the file a category (XMP photoshop:Category, a keyword "category|NAME" or a'
                " sub-folder: see [categories])"
            )
    elif unmapped and rule.values:
        names = ", ".join(f'"{name}"' for name in unmapped)
        changes.append(
            f"{'category' if len(unmapped) == 1 else 'categories'} {names}: not {platform}'s; left out"
        )
    return CategoryPlan(tuple(mapped), tuple(holds), tuple(changes), manual)


def map_categories(found: Sequence[str], rule: CategoryRule) -> tuple[list[str], list[str]]:
    """The agency's values for ``found`` (in order, each once) and the categories that map to none."""
    by_value = {_key(value): value for value in rule.values}
    by_label = {_key(label): value for value, label in rule.labels.items()}
    by_map = {_key(source): targets for source, targets in rule.map.items()}
    mapped: list[str] = []
    unmapped: list[str] = []
    for category in found:
        key = _key(category)
        targets: list[str]
        if key in by_value:
            targets = [by_value[key]]
        elif key in by_label:
            targets = [by_label[key]]
        elif key in by_map:
            entry = by_map[key]
            targets = [entry] if isinstance(entry, str) else list(entry)
        elif not rule.values:
            targets = [category]  # the agency takes any text
        else:
            unmapped.append(category)
            continue
        mapped.extend(target for target in targets if target not in mapped)
    return mapped, unmapped


def valid_values(rule: CategoryRule, shown: int = SHOWN_VALUES) -> str:
    """The first ``shown`` valid values, and how many there are ("see `stockbridge explain`")."""
    names = [_named(value, rule) for value in rule.values]
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])}, … ({len(names)} in all: `stockbridge explain FILE` lists them)"


def all_values(rule: CategoryRule) -> list[str]:
    return [_named(value, rule) for value in rule.values]


def _named(value: str, rule: CategoryRule) -> str:
    label = rule.labels.get(value)
    return f"{value} ({label})" if label else value


def _how_many(rule: CategoryRule) -> str:
    return {1: "one", 2: "one or two"}.get(rule.max, f"one to {rule.max}")


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(_key(value), value)
    return tuple(seen.values())
