"""What ``explain`` prints: per file, what it says about itself (a vector's format, Illustrator
level, size and preview; AI-generated, categories, flags, and where each came from), then each platform's verdict, its categories and the manual steps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from stockbridge.config.models import Config
from stockbridge.rules.assess import vector_facts
from stockbridge.rules.categories import all_values
from stockbridge.rules.plan import AssetFacts, Verdict

Explained = tuple[Path, AssetFacts | None, dict[str, Verdict]]


def facts_payload(facts: AssetFacts | None) -> dict[str, Any] | None:
    """The signals behind the verdicts; None when the file could not be read."""
    if facts is None:
        return None
    shown: dict[str, Any] = {
        "ai_generated": facts.ai is not None,
        "ai_source": facts.ai,
        "categories": list(facts.categories),
        "category_source": facts.category_source,
        "editorial": facts.editorial,
        "illustration": facts.illustration,
        "mature": facts.mature,
    }
    if facts.vector is not None:  # a vector's format, level, size and preview, as printed
        shown["vector"] = vector_facts(facts)
    return shown


def explain_payload(files: Sequence[Explained]) -> dict[str, Any]:
    return {
        "files": [
            {
                "path": str(path),
                **({"clip": facts.clip.as_meta()} if facts is not None and facts.clip is not None else {}),
                "facts": facts_payload(facts),
                "platforms": {name: _verdict_payload(v) for name, v in verdicts.items()},
            }
            for path, facts, verdicts in files
        ]
    }


def _verdict_payload(verdict: Verdict) -> dict[str, Any]:
    """Verdict, reasons and changes; ``categories`` (the platform's values for the file) and
    ``manual`` (steps left for the agency's website) only when there are some."""
    shown: dict[str, Any] = {
        "verdict": verdict.verdict,
        "reasons": list(verdict.reasons),
        "changes": list(verdict.changes),
    }
    if verdict.categories:
        shown["categories"] = list(verdict.categories)
    if verdict.manual:
        shown["manual"] = list(verdict.manual)
    return shown


def print_explained(config: Config, files: Sequence[Explained]) -> None:
    for path, facts, verdicts in files:
        click.echo(str(path))
        if facts is not None and facts.clip is not None:
            click.echo(f"  clip: {facts.clip.summary()}")
        if facts is not None:
            for line in _fact_lines(facts):
                click.echo(f"  {line}")
        for name, verdict in verdicts.items():
            click.echo(f"  {name}: {verdict.verdict}")
            for reason in verdict.reasons:
                click.echo(f"    - {reason}")
            for change in verdict.changes:
                click.echo(f"    ~ {change}")
            if verdict.categories:
                click.echo(f"    = categories: {', '.join(verdict.categories)}")
            for step in verdict.manual:
                click.echo(f"    ! to do on the website: {step}")
            platform = config.platforms.get(name)
            rule = platform.rules.categories if platform is not None else None
            if rule is not None and rule.required and not verdict.categories and verdict.verdict != "accept":
                values = all_values(rule)
                if values:
                    click.echo(f"    {name}'s categories: {', '.join(values)}")


def _fact_lines(facts: AssetFacts) -> list[str]:
    vector = vector_facts(facts) if facts.vector is not None else []
    ai = f"yes ({facts.ai})" if facts.ai else "no"
    if facts.categories:
        category = f"{', '.join(facts.categories)} (from {facts.category_source})"
    else:
        category = "none found"
    flags = [name for name in ("editorial", "illustration", "mature") if getattr(facts, name)]
    return [
        *vector,
        f"AI-generated: {ai}",
        f"category: {category}",
        f"flags: {', '.join(flags) if flags else 'none'}",
    ]
