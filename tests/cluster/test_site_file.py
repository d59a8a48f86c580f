"""Site file: the shipped template loads; missing / unknown / bad keys are named with file and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rubricrl.cluster.site import load_site
from rubricrl.errors import Problems

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
name: c
slurm:
  account: acct
  partition: gpu
  gpus_per_node: 8
  cpus_per_node: 32
paths:
  repo: {repo}
  runs: runs-here
containers:
  runtime: none
wandb:
  project: p
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "site.yaml"
    p.write_text(text.format(repo=REPO))
    return p


def test_example_site_file_is_valid_and_paths_become_absolute():
    site = load_site(REPO / "slurm" / "site.example.yaml")
    assert site.paths.repo == REPO
    assert site.containers.runtime == "apptainer" and site.containers.training is not None
    assert site.slurm.requeue and site.slurm.signal_seconds > 0


def test_relative_runs_resolve_against_repo(tmp_path):
    site = load_site(_write(tmp_path, GOOD))
    assert site.paths.runs == REPO / "runs-here"
    assert site.paths.venv == REPO / ".venv"


@pytest.mark.parametrize(
    "drop,key,line",
    [
        ("  account: acct\n", "slurm.account", 3),
        ("  partition: gpu\n", "slurm.partition", 3),
        ("wandb:\n  project: p\n", "wandb", 1),
        ("  runs: runs-here\n", "paths.runs", 8),
    ],
)
def test_missing_key_is_named_with_line_and_meaning(tmp_path, drop, key, line):
    p = _write(tmp_path, GOOD.replace(drop, ""))
    with pytest.raises(Problems) as e:
        load_site(p)
    msgs = e.value.problems
    assert any(m.startswith(f"{p}:{line}: {key}: missing key (") for m in msgs), msgs


def test_unknown_key_and_bad_values(tmp_path):
    text = GOOD.replace("  account: acct\n", "  account: acct\n  acount: x\n  time:\n    train: tomorrow\n")
    text = text.replace("runtime: none", "runtime: docker")
    p = _write(tmp_path, text)
    with pytest.raises(Problems) as e:
        load_site(p)
    joined = "\n".join(e.value.problems)
    assert f"{p}:4: slurm.acount: unknown key" in joined
    assert "tomorrow" in joined and "not a Slurm time" in joined
    assert "containers.runtime" in joined


def test_apptainer_runtime_needs_every_image(tmp_path):
    p = _write(tmp_path, GOOD.replace("runtime: none", "runtime: apptainer\n  training: /x.sif"))
    with pytest.raises(Problems) as e:
        load_site(p)
    assert "judge, cpu" in "\n".join(e.value.problems)


def test_cli_reports_site_problems_without_traceback(tmp_path):
    p = _write(tmp_path, GOOD.replace("  gpus_per_node: 8\n", ""))
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "cluster", "plan", "rubicon", "--site", str(p)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 2
    assert "slurm.gpus_per_node: missing key" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "cluster", "plan", "rubicon", "--site", str(tmp_path / "none.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 2 and "site.example.yaml" in r.stderr and "Traceback" not in r.stderr
