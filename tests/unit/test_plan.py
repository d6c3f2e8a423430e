"""Planning rules, table by table: what each platform gets, and why not when it does not."""

from __future__ import annotations

import pytest

from stockbridge.config.rules import RulesConfig
from stockbridge.rules.plan import ACCEPT, HOLD, REJECT, AssetFacts, evaluate, shorten

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
        # 3.996 MP must not print as "4.0 MP" next to "needs at least 4.0 MP" (tests/unit/test_measures.py).
        (facts(width=1999, height=1999), rules(min_megapixels=4.0), REJECT, "3.996 MP (1999×1999)"),
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


def test_keywords_over_the_limit_are_held_when_the_platform_says_hold():
    result = evaluate("shop", facts(keywords=KEYWORDS[:60]), rules(keywords={"max": 50, "over_max": "hold"}))
    assert result.verdict == HOLD
    assert result.reasons[0].startswith("60 keywords, shop takes at most 50")


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Fishing boats in a calm harbour at dawn", 20, "Fishing boats in a"),
        ("Fishing boats, harbour at dawn", 15, "Fishing boats"),
        ("Short", 20, "Short"),
        ("Supercalifragilisticexpialidocious", 10, "Supercalif"),
        ("  spaced   out   words  ", 11, "spaced out"),
    ],
)
def test_shorten_cuts_at_a_word_boundary(text, limit, expected):
    result = shorten(text, limit)
    assert result == expected and len(result) <= limit


def test_a_long_title_is_shortened_for_that_platform_when_it_says_shorten():
    title = "Fishing boats in a calm harbour at dawn with mist over the water"
    result = evaluate("shop", facts(title=title), rules(title={"max_chars": 30, "over_max": "shorten"}))
    assert result.verdict == ACCEPT
    assert result.title == "Fishing boats in a calm"
    assert result.changes == ("title 64 → 23 characters (cut at a word boundary)",)
    assert result.needs_copy


def test_a_long_description_is_shortened_and_the_title_left_alone():
    result = evaluate(
        "shop", facts(description="word " * 100), rules(description={"max_chars": 50, "over_max": "shorten"})
    )
    assert result.verdict == ACCEPT and result.title is None
    assert result.description is not None and len(result.description) <= 50


def test_an_empty_title_is_filled_from_the_description_when_asked():
    result = evaluate(
        "shop",
        facts(title=None, description="Fishing boats in a calm harbour at dawn, Portugal"),
        rules(title={"required": True, "max_chars": 30, "from_description": True}),
    )
    assert result.verdict == ACCEPT
    assert result.title == "Fishing boats in a calm"
    assert "title filled from the description" in result.changes


def test_editorial_files_are_rejected_or_routed_per_platform():
    asset = facts(editorial=True)
    assert evaluate("a", asset, rules()).verdict == ACCEPT
    rejected = evaluate("b", asset, rules(editorial="reject"))
    assert rejected.verdict == REJECT and "editorial" in rejected.reasons[0]
    routed = evaluate("c", asset, rules(editorial={"remote_dir": "Editorial"}))
    assert routed.verdict == ACCEPT and routed.remote_dir == "Editorial"
    assert routed.changes == ("editorial: uploaded into Editorial/",)


def test_a_missing_release_holds_the_file_with_where_it_was_looked_for(tmp_path):
    asset = facts(release_needs=frozenset({"people"}), release_hints={"people": "expected IMG_1.release.pdf"})
    result = evaluate("shop", asset, rules(releases={"required_for": ["people"], "delivery": "folder"}))
    assert result.verdict == HOLD
    assert result.reasons == ("people in frame, no model release found; expected IMG_1.release.pdf",)
    assert evaluate("lenient", asset, rules()).verdict == ACCEPT


def test_a_found_release_travels_with_the_file(tmp_path):
    release = tmp_path / "IMG_1.release.pdf"
    asset = facts(release_needs=frozenset({"people"}), releases={"people": (release,)})
    result = evaluate(
        "shop",
        asset,
        rules(releases={"required_for": ["people"], "delivery": "folder", "remote_dir": "modelrelease"}),
    )
    assert result.verdict == ACCEPT
    assert result.releases == (release,)
    assert result.changes == ("release IMG_1.release.pdf → /modelrelease/",)


def test_an_iptc_keyword_over_64_bytes_is_reported_when_the_copy_is_rewritten():
    long_keyword = "Санкт-Петербург набережная ночью зимой"  # 38 characters, 70 bytes in UTF-8
    assert len(long_keyword) < 64 < len(long_keyword.encode())
    result = evaluate("shop", facts(keywords=(long_keyword, *KEYWORDS[:60])), rules(keywords={"max": 10}))
    assert any(
        f'"{long_keyword}"' in change and "IPTC keeps the first 64" in change for change in result.changes
    )
