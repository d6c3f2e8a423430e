"""Categories, flags and AI-generated work as pure rules (issue 15): the presets' tables, the
mapping of a file's categories onto an agency's list, the AI signal and what each policy makes
of it, and the per-file CSV cells."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from stockbridge.config.categories import AiConfig, AiRule, CategoriesConfig, CategoryRule, FlagConfig
from stockbridge.config.models import CsvConfig, PlatformConfig
from stockbridge.config.presets import load_preset, preset_about, preset_names
from stockbridge.config.rules import RulesConfig
from stockbridge.delivery.manifests import ManifestRow, render_manifest
from stockbridge.rules.ai import ai_signal, plan_ai
from stockbridge.rules.categories import file_categories, has_flag, map_categories, plan_categories
from stockbridge.rules.plan import AssetFacts, evaluate

DST = "XMP-iptcExt:DigitalSourceType"


def preset_rules(name: str) -> RulesConfig:
    return RulesConfig.model_validate(load_preset(name).get("rules", {}))


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_category_value_is_on_the_agencys_list(name: str) -> None:
    rule = preset_rules(name).categories
    if not rule.values:
        return
    for source, targets in rule.map.items():
        for target in [targets] if isinstance(targets, str) else targets:
            assert target in rule.values, f"{name}: map.{source} → {target!r}"
    assert set(rule.labels) <= set(rule.values)
    assert len(set(rule.values)) == len(rule.values), f"{name}: a value listed twice"


@pytest.mark.parametrize("name", preset_names())
def test_presets_with_ai_or_category_rules_say_where_they_come_from_and_when(name: str) -> None:
    rules = preset_rules(name)
    if rules.ai == AiRule() and rules.categories == CategoryRule():
        return
    about = preset_about(name)["ai_and_categories"]
    assert about["sources"] and all(source.startswith("https://") for source in about["sources"])
    assert datetime.date.fromisoformat(about["checked"]) >= datetime.date(2026, 11, 27)
    assert about["notes"].strip()
    if rules.ai.generated == "reject":
        assert rules.ai.policy, f"{name} rejects AI work without naming its policy"


def test_each_agencys_category_names_map_onto_the_other_ones_list() -> None:
    # A contributor who writes Shutterstock's names gets Adobe's numbers, and the other way round.
    shutterstock, adobe = preset_rules("shutterstock").categories, preset_rules("adobe_stock").categories
    for value in shutterstock.values:
        if value not in (
            "Celebrities",
            "Education",
            "Holidays",
            "Miscellaneous",
            "Objects",
            "Vintage",
            "People",
        ):
            assert map_categories([value], adobe)[0], f"Shutterstock's {value!r} has no Adobe number"
    for number, label in adobe.labels.items():
        if number not in ("17",):  # Social Issues: no Shutterstock counterpart
            assert map_categories([label], shutterstock)[0], f"Adobe's {label!r} has no Shutterstock name"


def test_a_category_maps_by_value_label_or_table_in_any_case_and_each_value_once() -> None:
    rule = CategoryRule(
        values=["1", "11", "14"],
        labels={"1": "Animals", "11": "Landscapes"},
        map={"Nature": ["11", "14"], "Wildlife": "1"},
        max=3,
    )
    assert map_categories(["animals", "NATURE", "14", "wildlife", "Sunsets"], rule) == (
        ["1", "11", "14"],
        ["Sunsets"],
    )
    assert map_categories(["Anything at all"], CategoryRule()) == (["Anything at all"], [])


def test_more_categories_than_the_agency_takes_keep_the_first_and_say_so() -> None:
    rule = CategoryRule(values=["A", "B", "C"], max=2, required=True)
    plan = plan_categories("agency", ["c", "a", "b"], "XMP-photoshop:SupplementalCategories", rule)
    assert plan.values == ("C", "A") and not plan.holds
    assert plan.changes == ("categories: agency takes 2, the first 2 kept (B left out)",)


def test_a_required_category_that_is_missing_holds_with_a_short_list() -> None:
    rule = CategoryRule(values=[f"Name{index}" for index in range(12)], required=True)
    (reason,) = plan_categories("agency", [], None, rule).holds
    assert reason.startswith("no category, agency needs one of Name0, Name1, Name2, Name3, Name4,")
    assert "Name7, … (12 in all: `stockbridge explain FILE` lists them)" in reason
    assert "Name8" not in reason
    assert plan_categories("agency", [], None, CategoryRule(values=["A"])).holds == ()


def test_a_mapping_to_a_value_the_agency_does_not_have_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"map\.Nature: 'Natur' is not one of values"):
        CategoryRule(values=["Nature"], map={"Nature": "Natur"})
    with pytest.raises(ValueError, match="tag name"):
        CategoriesConfig(fields=["-g1:2"])
    # An AI file's CSV cell under a header the CSV does not have would be lost without a word.
    with pytest.raises(ValueError, match=r"rules\.ai\.csv: 'AI' is not one of csv\.columns"):
        PlatformConfig.model_validate(
            {
                "protocol": "folder",
                "path": "/tmp/x",
                "rules": {"ai": {"csv": {"AI": "Yes"}}},
                "csv": {"columns": ["Filename"]},
            },
            strict=False,
        )


def test_categories_come_from_the_first_field_then_a_hierarchical_keyword_then_the_folder(
    tmp_path: Path,
) -> None:
    config = CategoriesConfig(folders={"nature": "Nature", "nature/birds": "Animals"})
    image = tmp_path / "Nature" / "Birds" / "tit.jpg"
    extra = {"XMP-photoshop:SupplementalCategories": ("Sky", "sky", "Sea")}
    assert file_categories(image, tmp_path, extra, config) == (
        ("Sky", "Sea"),
        "XMP-photoshop:SupplementalCategories",
    )
    tree = {"XMP-lr:HierarchicalSubject": ("places|Alps", "Category|Landscapes", "category")}
    assert file_categories(image, tmp_path, tree, config) == (
        ("Landscapes",),
        'hierarchical keyword "category|…"',
    )
    assert file_categories(image, tmp_path, {}, config) == (("Animals",), 'folder "nature/birds"')
    assert file_categories(tmp_path / "x.jpg", tmp_path, {}, config) == ((), None)


def test_flags_come_from_a_folder_a_keyword_or_a_tag(tmp_path: Path) -> None:
    flag = FlagConfig(
        folder="mature", keywords=["nsfw"], field="XMP-photoshop:Instructions", contains="adult"
    )
    assert has_flag(tmp_path / "Mature" / "a.jpg", tmp_path, (), {}, flag)
    assert has_flag(tmp_path / "a.jpg", tmp_path, ("NSFW",), {}, flag)
    assert has_flag(tmp_path / "a.jpg", tmp_path, (), {"XMP-photoshop:Instructions": ("Adult only",)}, flag)
    assert not has_flag(tmp_path / "a.jpg", tmp_path, ("nature",), {}, flag)


@pytest.mark.parametrize(
    ("value", "marked"),
    [
        ("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia", True),
        ("compositeWithTrainedAlgorithmicMedia", True),
        ("http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture", False),
        ("compositeSynthetic", False),  # not generative AI unless the config says so
    ],
)
def test_the_iptc_digital_source_type_marks_a_file_ai_generated(value: str, marked: bool) -> None:
    signal = ai_signal((), {DST: (value,)}, AiConfig())
    assert (signal is not None) == marked
    if marked:
        assert signal == f"IPTC DigitalSourceType {value.rsplit('/', 1)[-1]}"


def test_a_keyword_or_a_tag_of_your_choosing_marks_it_too() -> None:
    config = AiConfig(
        source_types=["trainedAlgorithmicMedia", "compositeSynthetic"],
        keywords=["ai-generated"],
        field="XMP-xmp:CreatorTool",
        contains="midjourney",
    )
    assert (
        ai_signal((), {DST: ("compositeSynthetic",)}, config) == "IPTC DigitalSourceType compositeSynthetic"
    )
    assert ai_signal(("AI-Generated",), {}, config) == "keyword 'AI-Generated'"
    assert (
        ai_signal((), {"XMP-xmp:CreatorTool": ("Midjourney v6",)}, config)
        == "XMP-xmp:CreatorTool 'Midjourney v6'"
    )
    assert ai_signal(("sunset",), {"XMP-xmp:CreatorTool": ("Lightroom",)}, config) is None


def test_a_rejecting_platform_names_its_policy_and_an_accepting_one_lists_its_steps() -> None:
    reject = AiRule(generated="reject", policy="example.com/ai-policy")
    (reason,) = plan_ai("agency", "keyword 'ai'", (), {}, reject).rejects
    assert (
        reason
        == "AI-generated (keyword 'ai'); agency does not accept AI-generated content: example.com/ai-policy"
    )
    accept = AiRule(steps=["tick the AI box"], csv={"AI": "Yes"}, avoid_terms=["generative AI"])
    plan = plan_ai(
        "agency", "x", ("sunset", "Generative-AI", "generative ai art"), {"title": "A sunset"}, accept
    )
    assert plan.keywords == ("sunset",) and plan.manual == ("tick the AI box",)
    assert plan.csv == (("AI", "Yes"),)
    assert plan_ai("agency", None, ("x",), {}, reject) == plan_ai("agency", None, ("x",), {}, accept)


def test_an_accepted_ai_file_is_sent_without_the_avoided_keywords() -> None:
    facts = AssetFacts(
        file_type="jpeg",
        size_bytes=1000,
        width=3000,
        height=2000,
        title="Sunset",
        keywords=("sunset", "generative AI", "sky"),
        ai="IPTC DigitalSourceType trainedAlgorithmicMedia",
        categories=("Nature",),
        category_source="XMP-photoshop:Category",
    )
    verdict = evaluate("adobe", facts, preset_rules("adobe_stock"))
    assert verdict.verdict == "accept"
    assert verdict.keywords == ("sunset", "sky") and verdict.categories == ("11",)
    assert len(verdict.manual) == 3  # the two checkboxes and the file type (Photos or Illustrations)
    assert evaluate("shutterstock", facts, preset_rules("shutterstock")).verdict == "reject"


def test_csv_cells_are_per_file_with_csv_values_as_the_default() -> None:
    config = CsvConfig(
        columns=["Filename", "Categories", "Illustration", "Mature Content", "AI"],
        values={"Categories": "Nature", "Illustration": "Yes"},
    )
    base = ManifestRow(
        filename="a.jpg", title=None, description=None, keywords=(), editorial=False, releases=()
    )
    own = ManifestRow(
        filename="b.jpg",
        title=None,
        description=None,
        keywords=(),
        editorial=False,
        releases=(),
        categories=("Animals/Wildlife", "Nature"),
        mature=True,
        cells={"AI": "Yes"},
    )
    hostile = ManifestRow(
        filename="c.jpg",
        title=None,
        description=None,
        keywords=(),
        editorial=False,
        releases=(),
        categories=('=HYPERLINK("http://x")',),  # a category taken as written (no agency list)
    )
    lines = render_manifest(config, [base, own, hostile]).splitlines()
    assert lines[1] == "a.jpg,Nature,Yes,No,"
    assert lines[2] == 'b.jpg,"Animals/Wildlife,Nature",Yes,Yes,Yes'
    assert lines[3].startswith('c.jpg,"HYPERLINK(') and "=" not in lines[3]
