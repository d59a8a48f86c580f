"""Hacking mining: patterns in the highest-reward rollouts are counted, with examples and lift."""

from __future__ import annotations

from replications.rubicon.hacking import detect, mine, render_markdown


def _r(text: str, reward: float) -> dict:
    return {"prompt": "Describe a city at night.", "completion": text, "reward": reward}


ROLLOUTS = [
    _r("What a fascinating question! The city glows with neon light and quiet streets.", 1.0),
    _r("Great question! Streetlights hum over wet asphalt while taxis pass.", 0.95),
    _r("This comprehensive, well-structured answer covers everything: the city sleeps under lamps.", 0.9),
    _r("The city sleeps. Lamps burn on empty corners and a bus sighs at a stop.", 0.3),
    _r("Night falls over the harbour; a ferry horn sounds twice across the water.", 0.2),
    _r("The lights go out one by one as the last bar closes its shutters.", 0.1),
    _r("", 0.0),
    _r("city " * 200, 0.0),
]


def test_detectors_fire_on_their_patterns_and_not_on_plain_text():
    assert "prefatory_sycophancy" in detect(ROLLOUTS[0]["completion"], 12, 3.0)
    assert "laudatory_self_evaluation" in detect(ROLLOUTS[2]["completion"], 12, 3.0)
    assert detect(ROLLOUTS[4]["completion"], 12, 3.0) == []
    assert "degenerate_length" in detect("", 12, 3.0)


def test_top_slice_counts_lift_and_examples():
    tax = mine(ROLLOUTS, top_frac=0.25, max_examples=1)
    assert tax.n_top == 2 and tax.n_all == 8 and tax.reward_cutoff == 0.95
    syc = tax.patterns["prefatory_sycophancy"]
    assert syc.top_count == 2 and syc.all_count == 2
    assert tax.lift("prefatory_sycophancy") == 4.0  # 100% of the top vs 25% overall
    assert len(syc.examples) == 1 and syc.examples[0]["reward"] == 1.0
    assert tax.patterns["laudatory_self_evaluation"].top_count == 0  # third-highest: outside the top 2
    assert tax.patterns["degenerate_length"].all_count >= 2 and tax.patterns["degenerate_length"].top_count == 0


def test_report_lists_every_pattern_and_the_defense_rubric():
    tax = mine(ROLLOUTS, top_frac=0.5)
    md = render_markdown(tax, "defense-reward-hacking")
    for name in tax.patterns:
        assert f"`{name}`" in md
    assert "defense-reward-hacking" in md and "Great question!" in md


def test_empty_rollouts():
    tax = mine([], 0.25)
    assert tax.n_all == 0 and all(p.top_count == 0 for p in tax.patterns.values())
