"""Characters a title may not contain (issue 13, item 16): Adobe Stock's CSV takes no commas in a title.

``title = { forbidden = ",", on_forbidden = "replace" | "hold", replace_with = " " }``: replaced in
this platform's copy (and said so in the job's changes), or held with a reason naming them.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stockbridge.config.rules import RulesConfig
from stockbridge.rules.plan import ACCEPT, HOLD, AssetFacts, evaluate


def facts(title: str | None, description: str | None = None) -> AssetFacts:
    return AssetFacts(file_type="jpeg", size_bytes=1, title=title, description=description, keywords=("a",))


def rules(**title: object) -> RulesConfig:
    return RulesConfig.model_validate({"title": title})


@pytest.mark.parametrize(
    ("title", "rule", "new_title", "change"),
    [
        pytest.param(
            "Sunset, beach, and palms",
            {"forbidden": ",", "on_forbidden": "replace"},
            "Sunset beach and palms",
            "title: commas replaced",
            id="the issue's title",
        ),
        pytest.param(
            "Sunset , beach",
            {"forbidden": ",", "on_forbidden": "replace"},
            "Sunset beach",
            "title: commas replaced",
            id="spaces collapse",
        ),
        pytest.param(
            "Palms, sand; sea",
            {"forbidden": ",;", "on_forbidden": "replace"},
            "Palms sand sea",
            "title: commas and semicolons replaced",
            id="two characters, both named",
        ),
        pytest.param(
            "Rock & roll, live",
            {"forbidden": ",&", "on_forbidden": "replace", "replace_with": ""},
            "Rock roll live",
            'title: "&" characters and commas replaced',
            id="replace_with empty drops them",
        ),
        pytest.param(
            "Sunset, beach",
            {"forbidden": ",", "on_forbidden": "replace", "replace_with": " -"},
            "Sunset - beach",
            "title: commas replaced",
            id="a configured replacement",
        ),
    ],
)
def test_forbidden_characters_are_replaced_in_this_platforms_title(title, rule, new_title, change):
    verdict = evaluate("adobe", facts(title), rules(**rule))
    assert verdict.verdict == ACCEPT
    assert verdict.title == new_title
    assert verdict.changes == (change,)
    assert verdict.metadata_changes == {"title": new_title}  # written into the copy


def test_forbidden_characters_hold_the_file_with_a_reason_naming_them():
    verdict = evaluate("adobe", facts("Sunset, beach, and palms"), rules(forbidden=",", on_forbidden="hold"))
    assert verdict.verdict == HOLD
    assert verdict.reasons == (
        "title contains commas, which adobe does not allow; remove them in your editor and export again "
        '(or set title.on_forbidden = "replace")',
    )


def test_hold_is_the_default_action():
    assert evaluate("adobe", facts("Sunset, beach"), rules(forbidden=",")).verdict == HOLD


def test_a_title_without_forbidden_characters_is_left_alone():
    verdict = evaluate("adobe", facts("Sunset beach"), rules(forbidden=",", on_forbidden="replace"))
    assert verdict.verdict == ACCEPT and verdict.title is None and verdict.changes == ()


def test_a_title_filled_from_the_description_loses_its_commas_too():
    rule = rules(forbidden=",", on_forbidden="replace", from_description=True, max_chars=70)
    verdict = evaluate("adobe", facts(None, "Sunset, beach, and palms"), rule)
    assert verdict.title == "Sunset beach and palms"
    assert verdict.changes == ("title filled from the description", "title: commas replaced")


def test_characters_go_before_the_length_is_measured():
    # 72 characters with its commas, 69 without: fits 70 once they are replaced, nothing is cut.
    title = "Sunset, beach, and palms on a quiet island at the end of a summer day!!"
    title = title + "x" * (72 - len(title))
    assert len(title) == 72 and len(title.replace(",", "")) == 70
    rule = rules(forbidden=",", on_forbidden="replace", max_chars=70, over_max="hold")
    verdict = evaluate("adobe", facts(title), rule)
    assert verdict.verdict == ACCEPT and verdict.title == title.replace(",", "")


def test_a_title_of_forbidden_characters_only_is_held():
    verdict = evaluate("adobe", facts(",,,"), rules(forbidden=",", on_forbidden="replace"))
    assert verdict.verdict == HOLD and verdict.reasons[0].startswith("title is only commas")


def test_the_description_takes_the_same_rule():
    rule = RulesConfig.model_validate({"description": {"forbidden": "|", "on_forbidden": "replace"}})
    verdict = evaluate("shop", facts("Boats", "Boats | harbour"), rule)
    assert verdict.description == "Boats harbour" and verdict.changes == (
        "description: vertical bars replaced",
    )


@pytest.mark.parametrize(
    "title",
    [
        {"forbidden": ",", "on_forbidden": "replace", "replace_with": ","},
        {"forbidden": " ", "on_forbidden": "replace"},  # the default replacement is a space
        {"forbidden": ",", "replace_with": "\n"},
        {"forbidden": ",", "on_forbidden": "drop"},
    ],
)
def test_a_replacement_that_cannot_work_is_a_config_error(title):
    with pytest.raises(ValidationError):
        RulesConfig.model_validate({"title": title})


def test_the_adobe_stock_preset_replaces_commas_in_titles():
    from stockbridge.config.presets import load_preset

    adobe = RulesConfig.model_validate(load_preset("adobe_stock")["rules"])
    assert (adobe.title.forbidden, adobe.title.on_forbidden) == (",", "replace")
    photo = AssetFacts(
        file_type="jpeg", size_bytes=1, width=6000, height=4000, title="Sunset, beach, and palms"
    )
    verdict = evaluate("adobe_stock", photo, adobe)
    assert verdict.title == "Sunset beach and palms" and "title: commas replaced" in verdict.changes
