"""The in-container NeMo RL driver: NeMo RL's own ``examples/run_grpo.py`` with the rubric environment.

``rubricrl nemo-config train FILE [k=v ...]`` and the ``nemo_rl`` engine of the training stages call
:func:`run_grpo`. It

* registers the ``rubric`` environment and the ``rubricrl_rubric`` data processor;
* resolves the config's file paths *after* every override (a stage's or the user's), and passes them
  absolute: Ray actors may start in another working directory;
* for a self-rewarding config (``env.rubric.judge_is_policy``), writes the policy engine's
  OpenAI-compatible URLs to the *effective* ``env.rubric.judge.base_url_file`` before the first step;
* wraps the trainer (``grpo_train`` or ``async_grpo_train``) so that each time it logs a training step,
  the rubric environments learn NeMo RL's step number (:meth:`RubricEnvironment.close_step`): rollout rows
  and metrics records carry GRPO steps, the step's rubric metrics go to NeMo RL's logger under
  ``train/rubric/``, and reward health is checked. At the end of training the stage-wide check runs
  (:meth:`RubricEnvironment.finish`); a failed check is a :class:`~rubricrl.errors.UserError`.

Only the parts of NeMo RL that v0.7.0's ``examples/run_grpo.py`` and ``nemo_rl.algorithms.grpo`` expose
as module attributes are wrapped; ``tests/nemo_rl/`` runs this against NeMo RL v0.7.0's own code.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from rubricrl.config_io import read_text
from rubricrl.errors import UserError
from rubricrl.train import nemo_rl_env

log = logging.getLogger(__name__)

# Config keys holding paths that the driver makes absolute; MODEL_KEYS only when the relative path exists
# (otherwise they are hub ids such as Qwen/Qwen3-30B-A3B).
PATH_KEYS = (
    "env.rubric.metrics_path",
    "env.rubric.rollouts_path",
    "env.rubric.health_path",
    "env.rubric.judge.base_url_file",
    "env.rubric.monitor.path",
    "env.rubric.monitor.judge.base_url_file",
    "env.rubric.teacher.base_url_file",
    "data.train.data_path",
    "checkpointing.checkpoint_dir",
    "logger.log_dir",
)
MODEL_KEYS = ("policy.model_name", "policy.tokenizer.name")
MONITOR_PREFIX = "monitor/"  # rubricrl.reward.drift.PREFIX: the drift monitor's figures in a step's record


# --------------------------------------------------------------------------- config paths


def _lookup(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _split(override: str) -> tuple[str, str, str] | None:
    """``(prefix, key, value)`` of a Hydra ``key=value`` override (prefix ``+``, ``++`` or ``~``)."""
    if "=" not in override:
        return None
    key, value = override.split("=", 1)
    prefix = key[: len(key) - len(key.lstrip("+~"))]
    return prefix, key[len(prefix) :], value


def effective_value(cfg: Mapping[str, Any], overrides: list[str], key: str) -> Any:
    """The value ``key`` has once ``overrides`` apply to ``cfg`` (the last override of a key wins)."""
    value = _lookup(cfg, key)
    for o in overrides:
        parts = _split(o)
        if parts is not None and parts[1] == key:
            value = None if parts[0] == "~" else parts[2]
    return value


def _absolute(value: str, key: str) -> str | None:
    """``value`` made absolute, or None when it is already absolute or is not a local path."""
    if not value or value in ("null", "None") or Path(value).is_absolute():
        return None
    if key in MODEL_KEYS and not Path(value).exists():
        return None
    return str(Path(value).resolve())


def absolute_overrides(cfg: Mapping[str, Any], overrides: list[str]) -> list[str]:
    """``overrides`` with every path key's value made absolute, plus overrides for relative paths of ``cfg``.

    A key that an override sets is rewritten in place (the last one of the key counts, as in Hydra); a key
    only the YAML sets gets a new override at the end. Paths resolve against the current directory.
    """
    out = []
    overridden = set()
    for o in overrides:
        parts = _split(o)
        if parts is not None and parts[1] in PATH_KEYS + MODEL_KEYS and parts[0] != "~":
            overridden.add(parts[1])
            fixed = _absolute(parts[2], parts[1])
            if fixed is not None:
                o = f"{parts[0]}{parts[1]}={fixed}"
        out.append(o)
    for key in PATH_KEYS + MODEL_KEYS:
        value = _lookup(cfg, key)
        if key not in overridden and isinstance(value, str):
            fixed = _absolute(value, key)
            if fixed is not None:
                out.append(f"{key}={fixed}")
    return out


# --------------------------------------------------------------------------- the trainer wrapper


def publish_policy_endpoints(path: Path, policy_generation: Any) -> None:
    """Write the policy engine's OpenAI-compatible URLs to ``path`` (the self-grader's endpoint file).

    Raises:
        UserError: the policy exposes no HTTP server.
    """
    urls = [u for u in getattr(policy_generation, "dp_openai_server_base_urls", None) or [] if u]
    if not urls:
        raise UserError(
            "env.rubric.judge_is_policy needs the policy's HTTP server: set "
            "policy.generation.vllm_cfg.async_engine=true and expose_http_server=true"
        )
    nemo_rl_env.write_endpoints(path, urls)
    print(f"rubricrl: policy grader endpoints ({len(urls)}) -> {path}", flush=True)


def rubric_envs(*mappings: Mapping[str, Any] | None) -> list[Any]:
    """The rubric environment actors among ``task_to_env`` mappings (each once).

    NeMo RL keys ``task_to_env`` by task name (``ResponseDataset`` names it after the data file, e.g.
    ``nemo_rl-train``), not by environment name, so rubric environments are recognised by their
    :meth:`RubricEnvironment.close_step` method.
    """
    out: list[Any] = []
    for m in mappings:
        for env in (m or {}).values():
            try:
                ours = callable(getattr(env, "close_step", None))
            except Exception:  # noqa: BLE001 - a foreign actor handle may raise on unknown attributes
                ours = False
            if ours and all(env is not e for e in out):
                out.append(env)
    return out


def _user_error(e: BaseException) -> UserError | None:
    """The :class:`UserError` an environment raised, unwrapped from Ray's ``RayTaskError``."""
    seen: BaseException | None = e
    for _ in range(5):
        if seen is None:
            return None
        cause = getattr(seen, "cause", None)
        if isinstance(cause, UserError):
            return cause
        if isinstance(seen, UserError) and not isinstance(cause, BaseException):
            return seen
        seen = cause if isinstance(cause, BaseException) else seen.__cause__
    return None


def _call(envs: list[Any], method: str, *args: Any) -> list[Any]:
    if not envs:
        return []
    import ray

    try:
        return ray.get([getattr(env, method).remote(*args) for env in envs])
    except Exception as e:  # noqa: BLE001 - an environment's UserError arrives wrapped by Ray
        err = _user_error(e)
        if err is not None:
            raise UserError(err.message, exit_code=err.exit_code) from None
        raise


class StepReporter:
    """Tells the rubric environments NeMo RL's step numbers as the trainer logs them.

    Wraps ``logger.log_metrics``: when the trainer logs ``prefix="train"`` metrics for step ``s``, every
    rubric environment closes ``s`` (:meth:`RubricEnvironment.close_step`); a finished step's rubric
    metrics are logged through the same logger under ``train/rubric`` at that step, except the gold-judge drift
    monitor's ``monitor/*`` figures, logged under ``train`` (``train/monitor/*``, the keys of TRL's runs). When it logs
    the step's timer (``prefix="timing/train"``), the environment adds its grading time
    (:meth:`RubricEnvironment.note_timing`) and the step's split is logged under ``timing``:
    ``timing/step_s``, ``timing/generation_s``, ``timing/reward_s``, ``timing/train_s``,
    ``timing/reward_share`` and the judge's ``timing/judge_queue_wait_s`` / ``timing/judge_compute_s``.
    """

    def __init__(self, envs: list[Any], logger: Any):
        self.envs = envs
        self.logger = logger
        self._log = logger.log_metrics
        logger.log_metrics = self.log_metrics
        self._last: int | None = None

    def log_metrics(self, metrics: Any, step: int, prefix: str = "", *a: Any, **k: Any) -> Any:
        out = self._log(metrics, step, prefix, *a, **k)
        if prefix == "train" and self.envs:
            finished = _call(self.envs, "close_step", int(step))
            if self._last is not None and int(step) != self._last:
                self._log_rubric(finished, self._last)
            self._last = int(step)
        elif prefix == "timing/train" and self.envs and isinstance(metrics, Mapping):
            timer = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
            figures = _call(self.envs, "note_timing", int(step), timer)
            for i, fig in enumerate(f for f in figures if f):
                self._log(fig, step, "timing" if i == 0 else f"timing/rubric{i}")
        return out

    def _log_rubric(self, records: list[Any], step: int) -> None:
        for i, rec in enumerate(r for r in records if r):
            drift = {k: v for k, v in rec.items() if k.startswith(MONITOR_PREFIX)}
            rest = {k: v for k, v in rec.items() if not k.startswith(MONITOR_PREFIX)}
            self._log(rest, step, "train/rubric" if i == 0 else f"train/rubric{i}")
            if drift:  # train/monitor/*: the keys TRL's W&B runs have for the same figures
                self._log(
                    drift if i == 0 else {k.replace(MONITOR_PREFIX, f"monitor{i}/", 1): v for k, v in drift.items()},
                    step,
                    "train",
                )

    def finish(self) -> list[dict[str, Any]]:
        """End of training: the last step's record and the stage-wide reward-health check."""
        if not self.envs:
            return []
        summaries = _call(self.envs, "finish")
        if self._last is not None:
            last = _call(self.envs, "global_post_process_and_metrics", None)
            self._log_rubric([m for _, m in last], self._last)
        return summaries


def wrap_trainer(trainer: Callable[..., Any], endpoint: Path | None) -> Callable[..., Any]:
    """``trainer`` (NeMo RL's ``grpo_train`` / ``async_grpo_train``) with endpoint publishing and step reports.

    Args:
        trainer: the function NeMo RL would call; its own parameter names find ``policy_generation``,
            ``task_to_env``, ``val_task_to_env`` and ``logger`` among positional or keyword arguments.
        endpoint: where to write the policy's URLs (self-rewarding), or None.
    """
    sig = inspect.signature(trainer)

    def wrapped(*a: Any, **k: Any) -> Any:
        bound = sig.bind_partial(*a, **k).arguments
        if endpoint is not None:
            publish_policy_endpoints(endpoint, bound.get("policy_generation"))
        envs = rubric_envs(bound.get("task_to_env"), bound.get("val_task_to_env"))
        state = bound.get("grpo_save_state") or {}
        # The steps NeMo RL has checkpointed: grpo_train logs step total_steps + 1 next, async_grpo_train
        # current_step + 1. Rows of later steps (a dead attempt's) are cut, so no step appears twice.
        done = int(state.get("current_step" if trainer.__name__ == "async_grpo_train" else "total_steps", 0) or 0)
        for cut in _call(envs, "resume", done):
            if any(v for k, v in cut.items() if k.endswith("_cut")):
                print(f"rubricrl: resuming after step {done}: cut {cut} (rows of steps NeMo RL repeats)", flush=True)
        reporter = StepReporter(envs, bound["logger"]) if bound.get("logger") is not None else None
        out = trainer(*a, **k)
        if reporter is not None:
            for s in reporter.finish():
                print(
                    f"rubricrl: reward health: {s['steps_observed']} steps, {s['steps_with_reward_variance']} "
                    f"with varying rewards, {s['ungraded']} of {s['verdicts']} verdicts ungraded",
                    flush=True,
                )
            for d in _call(envs, "drift_summary"):
                if d is not None:
                    print(f"rubricrl: drift monitor: {d['verdict']}", flush=True)
        return out

    wrapped.__signature__ = sig  # type: ignore[attr-defined]
    wrapped.__wrapped__ = trainer  # type: ignore[attr-defined]
    return wrapped


# --------------------------------------------------------------------------- entry point


def run_grpo(config: Path, overrides: list[str] | None = None, nemo_rl_root: Path = Path("/opt/nemo-rl")) -> None:
    """Run NeMo RL's ``examples/run_grpo.py`` on a generated config with the rubric environment.

    Raises:
        UserError: NeMo RL is not at ``nemo_rl_root``; the policy exposes no HTTP server; reward health failed.
    """

    config = Path(config)
    cfg = yaml.safe_load(read_text(config)) or {}
    if not (Path(nemo_rl_root) / "examples" / "run_grpo.py").is_file():
        raise UserError(
            f"NeMo RL not found at {nemo_rl_root} (examples/run_grpo.py); run inside the "
            "nvcr.io/nvidia/nemo-rl:v0.7.0 container or pass --nemo-rl-root"
        )
    if str(nemo_rl_root) not in sys.path:
        sys.path.insert(0, str(nemo_rl_root))

    nemo_rl_env.register()
    extra = absolute_overrides(cfg, [o for o in (overrides or []) if o != "--"])
    endpoint = None
    if str(effective_value(cfg, extra, "env.rubric.judge_is_policy")).lower() == "true":
        url_file = effective_value(cfg, extra, "env.rubric.judge.base_url_file")
        if not url_file:
            raise UserError(
                "env.rubric.judge_is_policy needs env.rubric.judge.base_url_file (where the policy's "
                "URLs are written for the grader)"
            )
        endpoint = Path(url_file).resolve()
    run_grpo_mod = importlib.import_module("examples.run_grpo")
    select = getattr(run_grpo_mod, "_select_trainer", None)
    if select is not None and not getattr(select, "_rubricrl", False):

        def _select(master_config: Any) -> Any:
            return wrap_trainer(select(master_config), endpoint)

        _select._rubricrl = True  # type: ignore[attr-defined]
        run_grpo_mod._select_trainer = _select
    grpo = importlib.import_module("nemo_rl.algorithms.grpo")
    async_train = getattr(grpo, "async_grpo_train", None)
    if async_train is not None and not hasattr(async_train, "__wrapped__"):
        grpo.async_grpo_train = wrap_trainer(async_train, endpoint)
    argv = sys.argv
    sys.argv = ["run_grpo.py", "--config", str(config.resolve()), *extra]
    try:
        run_grpo_mod.main()
    finally:
        sys.argv = argv
        if select is not None:
            run_grpo_mod._select_trainer = select
        if async_train is not None:
            grpo.async_grpo_train = async_train
