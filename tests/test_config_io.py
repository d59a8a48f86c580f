import pytest

from rubricrl.errors import Problems, UserError
from rubricrl.judge.config import load_judge_config


def test_unknown_keys_name_line_and_suggest(tmp_path):
    p = tmp_path / "judge.yaml"
    p.write_text("backend: openai\nmodle: x\nsampling:\n  temprature: 1.0\n", encoding="utf-8")
    with pytest.raises(Problems) as e:
        load_judge_config(p)
    lines = e.value.problems
    assert any(f"{p}:2: modle: unknown key; did you mean" in ln and "'model'" in ln for ln in lines)
    assert any(f"{p}:4: sampling.temprature: unknown key; did you mean 'temperature'?" in ln for ln in lines)


def test_wrong_type_and_invalid_yaml(tmp_path):
    p = tmp_path / "judge.yaml"
    p.write_text("retries: many\n", encoding="utf-8")
    with pytest.raises(Problems, match=r"judge.yaml:1: retries: "):
        load_judge_config(p)
    p.write_text("backend: [openai\n", encoding="utf-8")
    with pytest.raises(UserError, match="invalid YAML"):
        load_judge_config(p)


def test_overrides_apply_before_validation(tmp_path):
    p = tmp_path / "judge.yaml"
    p.write_text("backend: openai\nbase_url: http://127.0.0.1:1/v1\n", encoding="utf-8")
    cfg = load_judge_config(p, {"sampling.temperature": 1.0, "retries": 0})
    assert cfg.sampling.temperature == 1.0 and cfg.retries == 0
