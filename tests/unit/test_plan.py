"""Planning rules, table by table: what each platform gets, and why not when it does not."""

from __future__ import annotations

import pytest

from stockbridge.config import RulesConfig
from stockbridge.plan import ACCEPT, HOLD, REJECT, AssetFacts, evaluate

KEYWORDS = tuple(f"kw{index}" for index in range(70))


def facts(**overrides) -> AssetFacts:
    base = dict(
        file_type="jpeg",
        size_bytes=8_000_000,
        width=6000,
        height=4000,
        title="Boats at dawn",
        description="Fishing boats in a calm harbour",
        keywords=KEYWORDS[:20],
    )
    base.update(overrides)
    return AssetFacts(**base)


def rules(**values) -> RulesConfig:
    return RulesConfig.model_validate(values)


@pytest.mark.parametrize(
    ("asset", "rule", "verdict", "reason"),
    [
        (facts(), rules(), ACCEPT, None),
        (
            facts(width=2040, height=1530),
            rules(min_megapixels=4.0),
            REJECT,
            "3.1 MP (2040×1530), shop needs at least 4.0 MP; stockbridge never upscales",
        ),
        # 3.99 MP must not print as "4.0 MP" next to "needs at least 4.0 MP".
        (facts(width=1999, height=1999), rules(min_megapixels=4.0), REJECT, "3.9 MP (1999×1999)"),
        (facts(width=None, height=None), rules(min_megapixels=4.0), REJECT, "pixel size unknown"),
        (facts(file_type="png"), rules(formats=["jpeg"]), REJECT, "PNG file, shop takes only JPEG"),
        (facts(file_type="tiff"), rules(formats=["jpg", "tif"]), ACCEPT, None),
        (facts(size_bytes=52_300_000), rules(max_file_mb=45), REJECT, "52.3 MB, shop takes at most 45 MB"),
        (
            facts(keywords=KEYWORDS[:3]),
            rules(keywords={"min": 7}),
            HOLD,
            "3 keywords, shop needs at least 7; add keywords in your editor and export again",
        ),
        (facts(keywords=KEYWORDS[:1]), rules(keywords={"min": 7}), HOLD, "1 keyword, shop needs at least 7"),
        (facts(title=None), rules(title={"required": True}), HOLD, "no title, shop requires one"),
        (facts(title="   "), rules(title={"required": True}), HOLD, "no title, shop requires one"),
        (
            facts(title="x" * 85),
            rules(title={"max_chars": 70}),
            HOLD,
            "title is 85 characters, shop allows 70",
        ),
        (
            facts(description=None),
            rules(description={"required": True}),
            HOLD,
            "no description, shop requires one",
        ),
        (
            facts(description="y" * 201),
            rules(description={"max_chars": 200}),
            HOLD,
            "description is 201 characters, shop allows 200",
        ),
    ],
)
def test_each_rule_gives_its_verdict_and_a_reason_a_person_can_act_on(asset, rule, verdict, reason):
    result = evaluate("shop", asset, rule)
    assert result.verdict == verdict
    if reason is None:
        assert result.reasons == ()
    else:
        assert any(r.startswith(reason) for r in result.reasons), result.reasons


def test_keywords_over_the_limit_are_trimmed_in_order_for_that_platform():
    result = evaluate("shop", facts(keywords=KEYWORDS[:62]), rules(keywords={"max": 49}))
    assert result.verdict == ACCEPT
    assert result.keywords == KEYWORDS[:49]
    assert result.changes == ("keywords 62 → 49 (first 49 kept)",)
    assert result.needs_copy


def test_keywords_within_the_limit_need_no_copy():
    result = evaluate("shop", facts(keywords=KEYWORDS[:49]), rules(keywords={"max": 49}))
    assert result.verdict == ACCEPT and result.keywords is None and not result.needs_copy


def test_a_reject_lists_every_reason_and_wins_over_a_hold():
    result = evaluate(
        "shop",
        facts(width=1000, height=1000, title=None, file_type="png"),
        rules(min_megapixels=4, formats=["jpeg"], title={"required": True}),
    )
    assert result.verdict == REJECT
    assert len(result.reasons) == 3


def test_one_platform_verdict_does_not_depend_on_another():
    asset = facts(width=2000, height=1500)
    strict = evaluate("strict", asset, rules(min_megapixels=4))
    lenient = evaluate("lenient", asset, rules(min_megapixels=2))
    assert (strict.verdict, lenient.verdict) == (REJECT, ACCEPT)
