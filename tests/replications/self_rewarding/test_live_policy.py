"""Live-policy grader on the real SmolLM2: same prompt as the HTTP judge, current weights, no silent False."""

from __future__ import annotations

import asyncio

import pytest
import torch

from rubricrl.judge import LLMJudge
from rubricrl.judge.interfaces import GradingRequest
from rubricrl.judge.live_policy import (
    VERDICT_PREFIX,
    LivePolicyGrader,
    continuation_side,
    grader_user_message,
    restricted_p_true,
)
from rubricrl.rubrics.schema import Criterion, Tier


def _p(verdict) -> float:
    return float(verdict.explanation.split("p_true=")[1].split()[0])


class RecordingBackend:
    """Captures the messages LLMJudge sends (unit test of prompt rendering, not a judge)."""

    model = "recorder"

    def __init__(self) -> None:
        self.sent: list[list[dict[str, str]]] = []

    async def complete(self, messages, **sampling):
        self.sent.append(messages)
        return '{"explanation": "x", "criteria_met": true}'


def test_prompt_is_what_the_http_judge_sends(smollm2, request_two_items, monkeypatch):
    model, tok = smollm2
    monkeypatch.setattr("rubricrl.judge.llm.new_tag", lambda: "turn-0123456789ab")
    backend = RecordingBackend()
    asyncio.run(LLMJudge(backend, mode="binary", template="healthbench").grade(request_two_items))
    grader = LivePolicyGrader(model, tok, template="healthbench")
    for c, sent in zip(request_two_items.criteria, backend.sent):
        assert sent == [
            {
                "role": "user",
                "content": grader_user_message(grader.templates, request_two_items, c, "turn-0123456789ab"),
            }
        ]
        text = grader.grader_text(request_two_items, c, "turn-0123456789ab")
        chat = tok.apply_chat_template(sent, tokenize=False, add_generation_prompt=True)
        assert text == chat + VERDICT_PREFIX
        assert "[-4] Recommends going" in text or "[5] Advises" in text


def test_verdicts_follow_the_current_weights_of_the_same_object(smollm2, request_two_items, monkeypatch):
    model, tok = smollm2
    monkeypatch.setattr("rubricrl.judge.live_policy.new_tag", lambda: "turn-0123456789ab")  # same tokens each call
    grader = LivePolicyGrader(model, tok, temperature=1.0, top_p=None, top_k=None)
    model.train()
    before = [_p(v) for v in grader.grade_batch([request_two_items])[0]]
    assert model.training, "train mode must be restored after grading"
    head = model.get_output_embeddings().weight
    saved = head.detach().clone()
    try:
        with torch.no_grad():
            head.add_(torch.randn(head.shape, generator=torch.Generator().manual_seed(0)) * 0.05)
        after = [_p(v) for v in grader.grade_batch([request_two_items])[0]]
    finally:
        with torch.no_grad():
            head.copy_(saved)
    again = [_p(v) for v in grader.grade_batch([request_two_items])[0]]
    assert any(abs(a - b) > 1e-3 for a, b in zip(before, after))
    assert again == pytest.approx(before, abs=1e-5)
    model.eval()


def test_shared_prefix_batches_equal_one_full_forward(smollm2, request_two_items):
    model, tok = smollm2
    grader = LivePolicyGrader(model, tok, temperature=1.0, top_p=None, top_k=None, batch_size=1)
    seqs = [
        grader._encode(grader.grader_text(request_two_items, c, "turn-aaaaaaaaaaaa"))
        for c in request_two_items.criteria
    ]
    with torch.no_grad():
        shared = grader._p_true_shared(seqs)
        full = []
        for s in seqs:
            logits = model(input_ids=torch.tensor([s]), logits_to_keep=1).logits[:, -1]
            full.append(float(restricted_p_true(logits, grader._true, grader._false, 1.0)[0]))
    assert shared == pytest.approx(full, abs=1e-4)


def test_ungraded_is_never_false(smollm2, request_two_items):
    model, tok = smollm2
    grader = LivePolicyGrader(model, tok, max_prompt_tokens=64)
    tiered = Criterion(id="t", text="Clarity", tiers=[Tier(score=0, label="poor"), Tier(score=2, label="clear")])
    req = GradingRequest(
        request_two_items.conversation, request_two_items.response, [*request_two_items.criteria, tiered]
    )
    verdicts = grader.grade_batch([req])[0]
    assert all(v.met is None and v.ungraded and v.error for v in verdicts)
    assert "max_prompt_tokens" in verdicts[0].error and "binary" in verdicts[2].error
    assert grader.stats.ungraded == 3 and grader.stats.graded == 0


def test_async_grade_and_seeded_sampling(smollm2, request_two_items, monkeypatch):
    model, tok = smollm2
    monkeypatch.setattr("rubricrl.judge.live_policy.new_tag", lambda: "turn-0123456789ab")
    a = LivePolicyGrader(model, tok, temperature=1.0, seed=7)
    b = LivePolicyGrader(model, tok, temperature=1.0, seed=7)
    va = asyncio.run(a.grade(request_two_items))
    vb = b.grade_batch([request_two_items])[0]
    assert [v.met for v in va] == [v.met for v in vb]
    assert all(v.judge == "live-policy" and v.met is not None for v in va)


@pytest.mark.parametrize(
    "text,side",
    [
        (" true", True),
        ("true", True),
        (" tr", True),
        ("t", True),
        ("true}", True),
        (" false", False),
        ("fa", False),
        ("false,", False),
        (" ", None),
        ("", None),
        ("trueish", None),
        ("null", None),
        ('"true"', None),
    ],
)
def test_continuation_side(text, side):
    assert continuation_side(text) is side


def test_restricted_p_true_temperature_and_filters():
    logits = torch.full((1, 10), -50.0)
    logits[0, 1], logits[0, 2], logits[0, 3] = 2.0, 1.0, 0.0  # 1, 2 -> true; 3 -> false
    t, f = torch.tensor([1, 2]), torch.tensor([3])
    p1 = float(restricted_p_true(logits, t, f, 1.0))
    expect = (torch.exp(torch.tensor(2.0)) + torch.exp(torch.tensor(1.0))) / (
        torch.exp(torch.tensor(2.0)) + torch.exp(torch.tensor(1.0)) + 1
    )
    assert p1 == pytest.approx(float(expect), abs=1e-6)
    assert float(restricted_p_true(logits, t, f, 0.0)) == 1.0
    assert float(restricted_p_true(logits, f, t, 0.0)) == 0.0
    assert float(restricted_p_true(logits, t, f, 0.3)) > p1 > float(restricted_p_true(logits, t, f, 3.0))
    assert float(restricted_p_true(logits, t, f, 1.0, top_k=1)) == 1.0
    assert float(restricted_p_true(logits, f, t, 1.0, top_p=0.5)) == 0.0
