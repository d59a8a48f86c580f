"""The authored rubric banks in rubric_banks/: they load, validate, meet the size targets, and the
stage-1 instructions agree with their programmatic checks (a compliant response passes every check,
a violating one fails)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rubricrl.rubrics.loader import load_paths, load_rubrics
from rubricrl.rubrics.schema import Rubric
from rubricrl.rubrics.verifiers import check_args, run_verifier
from rubricrl.rubrics.verifiers.builtin import DETECTORS

BANKS = Path(__file__).resolve().parents[1] / "rubric_banks"


@pytest.fixture(scope="module")
def rubrics() -> list[Rubric]:
    return load_rubrics(BANKS)


@pytest.fixture(scope="module")
def by_id(rubrics) -> dict[str, Rubric]:
    return {r.id: r for r in rubrics}


def test_every_bank_file_loads_without_problems():
    files = sorted(BANKS.rglob("*.yaml"))
    assert len(files) >= 8
    for f in files:
        result = load_paths(f)
        assert not result.problems, result.problems
        assert result.rubrics, f"{f} has no rubrics"
        assert str(f) in result.banks or f.as_posix() in result.banks, f"{f} lacks a bank: header"


def test_size_targets(rubrics):
    n_criteria = sum(len(r.criteria) for r in rubrics)
    used = {c.verifier for r in rubrics for c in r.criteria if c.kind == "programmatic"}
    assert len(rubrics) >= 40
    assert n_criteria >= 300
    assert len(used) >= 25


def test_rubric_ids_unique(rubrics):
    dupes = [k for k, n in Counter(r.id for r in rubrics).items() if n > 1]
    assert not dupes


def test_programmatic_criteria_have_valid_args(rubrics):
    for r in rubrics:
        for c in r.criteria:
            if c.kind == "programmatic":
                assert check_args(c.verifier, c.args) is None, (r.id, c.id, check_args(c.verifier, c.args))


def test_stage1_rubrics_have_instructions(rubrics):
    stage1 = [r for r in rubrics if r.category.startswith("stage1")]
    assert len(stage1) >= 20
    for r in stage1:
        assert r.instruction.strip(), r.id
        assert any(c.kind == "programmatic" for c in r.criteria), r.id
    multi = [r for r in stage1 if sum(c.kind == "programmatic" for c in r.criteria) >= 2]
    assert len(multi) >= 10


def test_detectors_are_negative_and_critical_in_defense(rubrics):
    defense = [r for r in rubrics if r.category == "defense"]
    assert defense
    for r in defense:
        assert r.aggregation.veto is not None and r.aggregation.veto.floor == 0.0
        assert any(not c.negative for c in r.criteria), f"{r.id}: needs a positive criterion"
    for r in rubrics:
        for c in r.criteria:
            if c.verifier in DETECTORS:
                assert c.negative, (r.id, c.id)
    names = {c.verifier for r in defense for c in r.criteria if c.kind == "programmatic"}
    assert {
        "prefatory_sycophancy",
        "laudatory_self_evaluation",
        "grader_addressed_text",
        "ai_deflection",
        "degenerate_repetition",
    } <= names
    assert all(c.critical for r in defense for c in r.criteria if c.verifier in DETECTORS)


def test_stage2_uses_advanced_aggregation_and_tiers(rubrics):
    stage2 = [r for r in rubrics if r.category.startswith("stage2")]
    names = {r.aggregation.name for r in stage2}
    assert {"weighted_mean", "saturation", "interaction"} <= names
    assert any("shape" in r.aggregation.params for r in stage2)
    for r in stage2:
        tiered = [c for c in r.criteria if c.tiers]
        assert len(tiered) >= 2, r.id
        for c in tiered:
            assert all(t.description for t in c.tiers), (r.id, c.id)
        if r.aggregation.name == "interaction":
            refs = {c.id for c in r.criteria} | {c.group for c in r.criteria}
            for pair in r.aggregation.params["pairs"]:
                assert pair["a"] in refs and pair["b"] in refs, (r.id, pair)


# Responses written to satisfy (good) or break (bad) a stage-1 instruction. Every programmatic criterion
# must pass on the good response; at least one must fail on the bad one.
CASES = {
    "mc-words-120-end-phrase": (
        "Water boils at 100 degrees Celsius at sea level because that is where its vapour pressure "
        "equals the air pressure. Higher up, the air is thinner, so it boils sooner. Any other questions?",
        "Water boils at 100 degrees Celsius at sea level. Let me know if you have any other questions!",
    ),
    "mc-lowercase-no-commas": (
        "the bus leaves at nine. bring water and a hat. we return by noon.",
        "The bus leaves at nine, so bring water.",
    ),
    "mc-bullets3-keywords-under100": (
        "* The main cost is the deposit.\n* The biggest risk is a rate rise.\n* Keep three months of savings.",
        "* The main cost is the deposit.\n* Keep savings.\n* Compare lenders.\n* Read the contract.",
    ),
    "mc-title-sections-ps": (
        "<<A Week of Bread>>\nSECTION 1\nMix flour and water on Monday.\nSECTION 2\nBake on Saturday.\n\n"
        "P.S. Save some starter.",
        "A Week of Bread\nSECTION 1\nMix flour and water.\nSECTION 2\nBake.",
    ),
    "mc-json-lowercase": (
        '{"answer": "the mitochondria", "confidence": 0.9}',
        '{"answer": "The mitochondria"}',
    ),
    "mc-sentences-no-excl-question": (
        "Start with the smallest room. Clear one surface a day. Give away what you have not used in a year. "
        "Keep one box for things you are unsure about. Which room will you start with?",
        "Start small! Clear one surface a day. That is all.",
    ),
    "mc-numbered4-check-goodluck": (
        "1. Check the tyre pressure.\n2. Check the oil.\n3. Fill the tank.\n4. Pack a spare.\n\nGood luck.",
        "1. Check the tyres.\n2. Fill the tank.\n3. Pack a spare.\n\nGood luck!",
    ),
    "mc-quoted-200-chars": ('"Keep it short: tea first, then toast."', "Keep it short: tea first, then toast."),
    "mc-two-answers-150": (
        "Take the train; it is faster door to door.\n******\nDrive if you need the car at the other end.",
        "Take the train; it is faster door to door.",
    ),
    "mc-lines12-deadline2-caps2": (
        "The deadline is Friday.\nDo NOT miss the second deadline either.\nSubmit EARLY if you can.",
        "The deadline is Friday.\nSubmit early.",
    ),
    "mc-uppercase-50": (
        "TURN OFF THE MAIN VALVE, THEN CALL A PLUMBER.",
        "Turn off the main valve, then call a plumber.",
    ),
    "mc-3para-finally-150": (
        ("Moving house starts weeks before the van arrives. " * 7).strip()
        + "\n\n"
        + ("Pack one room at a time and label every box. " * 5).strip()
        + "\n\nFinally, "
        + ("keep a bag of essentials with you on the day. " * 5).strip(),
        "Moving house is hard.\n\nPack early.\n\nIn the end, relax.",
    ),
    "if-paragraphs-3-divider": (
        "First part.\n***\nSecond part.\n***\nThird part.",
        "First part.\n\nSecond part.\n\nThird part.",
    ),
    "if-json-summary-keys": ('{"summary": "short", "key_points": ["a", "b"]}', "Summary: short. Key points: a, b."),
    "if-sections-3": ("SECTION 1\nA.\nSECTION 2\nB.\nSECTION 3\nC.", "SECTION 1\nA.\nSECTION 3\nC."),
    "if-lines-haiku": (
        "cold rain on the tin\nthe dog refuses the door\nkettle starts to sing",
        "Here is a haiku:\ncold rain on the tin\nthe dog refuses the door\nkettle starts to sing",
    ),
    "if-start-here-is-my-plan": ("Here is my plan: first we sleep.", "Sure. Here is my plan: first we sleep."),
    "if-end-anything-else": (
        "Use baking soda. Is there anything else I can help with?",
        "Is there anything else I can help with? Use baking soda.",
    ),
    "if-two-responses": ("Yes.\n******\nNo.", "Yes.\n*****\nNo."),
    "if-placeholders-2": ("Dear [name], your order ships to [address].", "Dear customer, your order ships soon."),
    "if-highlight-3": ("Use *salt*, *fat* and **acid**.", "Use *salt*, fat and acid."),
    "if-no-commas": ("Use salt and fat and acid.", "Use salt, fat and acid."),
    "if-all-lowercase": ("use salt and fat.", "Use salt and fat."),
    "if-forbidden-intensifiers": ("It works well.", "It basically works."),
    "if-because-3": (
        "I left because it rained, because I was tired and because the bus came.",
        "I left because it rained.",
    ),
    "if-end-question": ("That is the plan. Does it suit you?", "Does it suit you? That is the plan."),
    "if-numbered-5": ("1. a\n2. b\n3. c\n4. d\n5. e", "1. a\n2. b\n3. c"),
    "if-plain-prose": ("Plain prose answers the question.\n\nA second paragraph adds detail.", "## Answer\n- a bullet"),
}


@pytest.mark.parametrize("rubric_id", sorted(CASES))
def test_stage1_instruction_and_checks_agree(by_id, rubric_id):
    rubric = by_id[rubric_id]
    good, bad = CASES[rubric_id]
    checks = [c for c in rubric.criteria if c.kind == "programmatic"]
    assert checks
    for c in checks:
        res = run_verifier(c.verifier, good, c.args)
        assert res.passed, f"{rubric_id}/{c.id} failed on the compliant response: {res.detail}"
    failed = [c.id for c in checks if not run_verifier(c.verifier, bad, c.args).passed]
    assert failed, f"{rubric_id}: the violating response passed every check"
