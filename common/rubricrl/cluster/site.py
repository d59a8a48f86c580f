"""The Slurm site file: one YAML describing a cluster (account, partition, GPUs, paths, images, W&B).

``slurm/site.example.yaml`` documents every key; copy it to ``slurm/site.yaml`` (ignored by git) and fill
it in. :func:`load_site` validates it once: a missing key is reported as ``file:line: key: missing ...``
with what the key means, an unknown key as a spelling error, and nothing is submitted until it is clean.

Keys without a default must be present (``null`` is allowed where the doc says so, e.g. ``account: null``
on clusters without accounting): a site file that silently falls back to someone else's partition or
image costs GPU hours.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rubricrl.config_io import format_validation_error, line_of, load_yaml_with_lines, strip_lines
from rubricrl.errors import Problems, UserError

_TIME = re.compile(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$|^\d+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlurmSite(_Strict):
    """Scheduler settings shared by every job."""

    account: str | None = Field(..., description="Slurm account charged (sbatch --account); null = none")
    partition: str = Field(..., description="partition for GPU jobs (sbatch --partition)")
    gpus_per_node: int = Field(..., ge=0, description="GPUs on one node of that partition (0 = CPU-only)")
    cpus_per_node: int = Field(..., ge=1, description="CPU cores a job may use on one node")
    mem: str | None = Field(default="0", description="memory per node (sbatch --mem); '0' = all, null = omit")
    cpu_partition: str | None = Field(default=None, description="partition for CPU-only jobs (default: partition)")
    qos: str | None = None
    constraint: str | None = None
    time: dict[str, str] = Field(
        default_factory=lambda: {"train": "24:00:00", "gpu": "08:00:00", "judge": "48:00:00", "cpu": "01:00:00"},
        description="time limit per job kind: train, gpu, judge, cpu",
    )
    signal_seconds: int = Field(
        default=300, ge=10, description="USR1 this many seconds before the time limit (checkpoint + requeue)"
    )
    requeue: bool = True
    gres: Literal["gpus-per-node", "gres"] = Field(
        default="gpus-per-node", description="how GPUs are requested: --gpus-per-node=N or --gres=gpu:N"
    )
    extra_args: list[str] = Field(default_factory=list, description="extra sbatch arguments for every job")

    @field_validator("time")
    @classmethod
    def _times(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = set(v) - {"train", "gpu", "judge", "cpu"}
        if unknown:
            raise ValueError(f"unknown job kind(s) {sorted(unknown)}; use train, gpu, judge, cpu")
        for k, t in v.items():
            if not _TIME.match(str(t)):
                raise ValueError(f"{k}: {t!r} is not a Slurm time (e.g. 04:00:00 or 1-00:00:00)")
        return {k: str(t) for k, t in v.items()}


class SitePathsFile(_Strict):
    """Where things live on the cluster (absolute paths, visible from every node)."""

    repo: Path = Field(..., description="this repository's checkout on the shared file system")
    runs: Path = Field(..., description="run folders (runs/<run>/<stage>/) on a shared file system")
    hf_home: Path | None = Field(default=None, description="HF_HOME for model downloads (shared)")
    venv: Path = Field(default=Path(".venv"), description="virtual environment used when container_runtime is none")


class ContainersSite(_Strict):
    """Container runtime and images (built from containers/*.def with ``make containers``)."""

    runtime: Literal["apptainer", "none"] = Field(
        ..., description="apptainer (clusters) or none (run on the host, e.g. the local test Slurm)"
    )
    training: Path | None = Field(default=None, description="training image (.sif): NeMo RL + rubricrl")
    judge: Path | None = Field(default=None, description="judge image (.sif): vLLM + rubricrl")
    cpu: Path | None = Field(default=None, description="CPU image (.sif): rubricrl only (report, data)")
    binds: list[str] = Field(default_factory=list, description="extra --bind paths (repo and runs are always bound)")
    executable: str = "apptainer"

    @model_validator(mode="after")
    def _images(self) -> ContainersSite:
        if self.runtime == "apptainer":
            missing = [k for k in ("training", "judge", "cpu") if getattr(self, k) is None]
            if missing:
                raise ValueError(
                    f"runtime apptainer needs image paths for {', '.join(missing)} (build them with `make containers`)"
                )
        return self


class WandbSite(_Strict):
    """Where runs are logged."""

    project: str = Field(..., description="W&B project the runs log to")
    entity: str | None = None
    mode: Literal["online", "offline", "disabled"] = "online"


class JudgeSite(_Strict):
    """The judge server job (Rubicon: a separate vLLM server)."""

    launcher: Literal["vllm", "rubricrl"] = Field(
        default="vllm", description="vllm: `vllm serve` in the judge image; rubricrl: `rubricrl serve` (CPU vLLM)"
    )
    replicas: int = Field(default=1, ge=1, description="independent servers (a job array)")
    gpus: int | None = Field(default=None, ge=0, description="GPUs per replica (default gpus_per_node)")
    host: str = Field(default="auto", description="auto = the node's hostname; 127.0.0.1 on a one-node test")
    port: int = Field(
        default=8000,
        ge=0,
        le=65535,
        description="first replica's port (replica i: port + i); 0 = any free port (launcher rubricrl)",
    )
    startup_timeout_s: int = Field(default=1800, ge=10)
    extra_args: list[str] = Field(default_factory=list, description="extra arguments for the server")


class SiteFile(_Strict):
    """A whole site file."""

    name: str = Field(..., description="a short name for the cluster (shown in plans and W&B tags)")
    slurm: SlurmSite = Field(..., description="scheduler settings")
    paths: SitePathsFile = Field(..., description="shared paths")
    containers: ContainersSite = Field(..., description="container runtime and images")
    wandb: WandbSite = Field(..., description="W&B project")
    judge: JudgeSite = Field(default_factory=JudgeSite)
    env: dict[str, str] = Field(default_factory=dict, description="environment variables exported into every job")
    source: Path | None = Field(default=None, exclude=True)

    def resolve(self, base: Path) -> SiteFile:
        """Make relative paths absolute against ``base`` (the site file's folder for repo, the repo otherwise)."""
        p = self.paths
        repo = p.repo if p.repo.is_absolute() else (base / p.repo).resolve()
        runs = p.runs if p.runs.is_absolute() else (repo / p.runs).resolve()
        venv = p.venv if p.venv.is_absolute() else repo / p.venv
        hf = p.hf_home if (p.hf_home is None or p.hf_home.is_absolute()) else repo / p.hf_home
        return self.model_copy(
            update={"paths": p.model_copy(update={"repo": repo, "runs": runs, "venv": venv, "hf_home": hf})}
        )


def _doc(model: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """The field description for a dotted location, walking nested models."""
    cur: Any = model
    desc = None
    for part in loc:
        fields = getattr(cur, "model_fields", None)
        if not fields or part not in fields:
            return None
        info = fields[part]
        desc = info.description
        cur = info.annotation
    return desc


def load_site(path: str | Path) -> SiteFile:
    """Load and validate a site file.

    Args:
        path: the YAML file (see ``slurm/site.example.yaml``).

    Returns:
        The site with ``paths`` made absolute (``paths.repo`` relative to the file's folder).

    Raises:
        UserError / Problems: missing file, invalid YAML, missing or unknown keys, bad values, each
        as ``file:line: key: what is wrong``.
    """
    path = Path(path)
    tree = load_yaml_with_lines(path)
    if not isinstance(tree, dict):
        raise UserError("expected a mapping at the top level (see slurm/site.example.yaml)", path=str(path), line=1)
    data = strip_lines(tree)
    try:
        site = SiteFile.model_validate(data)
    except ValidationError as e:
        problems = []
        generic = format_validation_error(e, path, tree)
        for err, text in zip(e.errors(), generic):
            if err["type"] == "missing":
                loc = tuple(err["loc"])
                where = ".".join(str(p) for p in loc)
                line = line_of(tree, loc)
                doc = _doc(SiteFile, loc)
                msg = f"{where}: missing key" + (f" ({doc})" if doc else "") + "; see slurm/site.example.yaml"
                problems.append(f"{path}:{line}: {msg}" if line else f"{path}: {msg}")
            else:
                problems.append(text)
        raise Problems(problems) from None
    return site.model_copy(update={"source": path.resolve()}).resolve(path.resolve().parent)
