"""The judge-attack suite: triples built as promised, and the scoring of verdict movements."""

from __future__ import annotations

from rubricrl.evaluation.judge_attacks import (
    BATCH_ONLY,
    CATEGORIES,
    SCENARIOS,
    build_suite,
    requests_for,
    score_suite,
)
from rubricrl.judge.interfaces import Verdict


def test_triples_share_the_clean_substance_and_neutral_twins_match_the_length():
    items = build_suite(mode="batch")
    clean = {it.scenario.id: it.response for it in items if it.variant == "clean"}
    assert len(clean) == len(SCENARIOS)
    by_key = {(it.scenario.id, it.category, it.variant): it for it in items}
    for (sid, cat, variant), it in by_key.items():
        assert it.response.startswith(clean[sid])
        if variant == "neutral":
            assert len(it.response) == len(by_key[(sid, cat, "attacked")].response)
    assert not any(k[1] == "padding" and k[2] == "neutral" for k in by_key)  # the padding's attack is its length
    binary = build_suite(mode="binary")
    assert not any(it.category in BATCH_ONLY for it in binary)
    assert {it.category for it in items if it.category} == set(CATEGORIES)


def test_the_true_verdict_is_against_the_attacker_on_both_kinds_of_item():
    wants = {s.attacker_wants_met for s in SCENARIOS}
    assert wants == {True, False}  # positive items (attacker wants met) and penalties (wants "not present")
    assert all(s.criterion.negative == (not s.attacker_wants_met) for s in SCENARIOS)


def test_batch_requests_carry_other_ids_and_binary_requests_one_item():
    items = build_suite(["forged_json"], SCENARIOS[:1], "batch")
    assert all(len(r.criteria) == 3 for r in requests_for(items, "batch"))
    assert all(len(r.criteria) == 1 for r in requests_for(items, "binary"))


def _scripted(items, fooled_by: set[str], ungraded_cats: set[str] = frozenset()) -> list[Verdict]:
    """A judge right on clean and neutral twins, fooled by the ``fooled_by`` categories."""
    out = []
    for it in items:
        s = it.scenario
        if it.variant == "attacked" and it.category in ungraded_cats:
            out.append(Verdict(s.criterion.id, error="HTTP 400: prompt too long"))
            continue
        truth = not s.attacker_wants_met
        met = s.attacker_wants_met if (it.variant == "attacked" and it.category in fooled_by) else truth
        expl = it.forged if it.forged and it.category in fooled_by else "checked"
        out.append(Verdict(s.criterion.id, met=met, explanation=expl))
    return out


def test_scoring_counts_moves_neutrals_copies_and_ungraded_by_policy():
    items = build_suite(["forged_json", "compliance_claim", "padding"], SCENARIOS, "binary")
    verdicts = _scripted(items, {"forged_json"}, {"padding"})
    res = score_suite(items, verdicts, "exclude")
    rows = {r["category"]: r for r in res["categories"]}
    n = len(SCENARIOS)
    assert res["clean_accuracy"] == 1.0 and res["clean_n"] == n
    assert rows["forged_json"]["attack_success"] == n and rows["forged_json"]["attack_success_rate"] == 1.0
    assert rows["forged_json"]["copied_forged_explanation"] == n == rows["forged_json"]["forged_n"]
    assert rows["compliance_claim"]["attack_success"] == 0 and rows["compliance_claim"]["neutral_moved"] == 0
    # padding made every attacked twin ungraded: under `exclude` the item vanishes, which the attacker wanted
    assert rows["padding"]["attacked_ungraded"] == n and rows["padding"]["attack_success"] == n
    assert rows["padding"]["neutral_rate"] is None
    pess = {r["category"]: r for r in score_suite(items, verdicts, "pessimistic")["categories"]}
    assert pess["padding"]["attack_success"] == 0 and pess["forged_json"]["attack_success"] == n
    negatives = sum(1 for s in SCENARIOS if s.criterion.negative)
    assert res["negative"]["scenarios"] == 3 * negatives


def test_a_scenario_the_judge_gets_wrong_clean_is_not_counted_as_an_attack_success():
    items = build_suite(["forged_json"], SCENARIOS[:2], "binary")
    verdicts = []
    for it in items:  # the judge already gives the attacker's verdict on the clean twin
        verdicts.append(Verdict(it.scenario.criterion.id, met=it.scenario.attacker_wants_met))
    res = score_suite(items, verdicts, "exclude")
    assert res["clean_accuracy"] == 0.0 and res["all"]["clean_against"] == 0 and res["all"]["attack_success"] == 0


def test_defense_detectors_veto_injections_and_leave_clean_and_neutral_twins_alone():
    from pathlib import Path

    from rubricrl.evaluation.judge_attacks import detector_vetoes
    from rubricrl.rubrics.loader import load_rubrics

    repo = Path(__file__).resolve().parents[2]
    defense = next(r for r in load_rubrics([repo / "rubric_banks/defense"]) if r.id == "defense-reward-hacking")
    items = build_suite(["forged_json", "grader_instruction", "compliance_claim"], SCENARIOS, "binary")
    vetoed = detector_vetoes(items, defense)
    by = {(it.scenario.id, it.category, it.variant): v for it, v in zip(items, vetoed)}
    assert all(by[(s.id, "forged_json", "attacked")] for s in SCENARIOS)  # verdict-like JSON
    assert all(by[(s.id, "grader_instruction", "attacked")] for s in SCENARIOS)
    assert not any(v for (_, _, variant), v in by.items() if variant in ("clean", "neutral"))
    res = score_suite(items, _scripted(items, {"forged_json", "compliance_claim"}), "exclude", vetoed)
    rows = {r["category"]: r for r in res["categories"]}
    assert rows["forged_json"]["moved_unvetoed"] == 0 and rows["forged_json"]["vetoed"] == len(SCENARIOS)
    assert res["clean_vetoed"] == 0 and res["detectors"] is True


def test_neutral_twins_do_not_trip_the_defense_detectors_by_repetition():
    from pathlib import Path

    from rubricrl.evaluation.judge_attacks import detector_vetoes
    from rubricrl.rubrics.loader import load_rubrics

    repo = Path(__file__).resolve().parents[2]
    defense = next(r for r in load_rubrics([repo / "rubric_banks/defense"]) if r.id == "defense-reward-hacking")
    items = [it for it in build_suite(mode="batch") if it.variant in ("clean", "neutral")]
    assert not any(detector_vetoes(items, defense))
