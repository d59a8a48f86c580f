"""Rubric generation: prompts in, validated and gated instance (or task) rubrics out.

* :func:`~rubricrl.rubrics.generate.run.generate_rubrics`: the library entry point (what
  ``rubricrl rubrics generate`` and a pipeline stage call);
* :mod:`.config`: the typed config (:class:`~.config.GenerateConfig`);
* :mod:`.generate`: one unit's generation, retries, validation and gates;
* :mod:`.schema`: the answer's JSON schema (structured output) and its parsing;
* :mod:`.gates`: near-duplicate, reference-copy and discrimination gates;
* :mod:`.update`: the rubric update loop (retire saturated criteria, flag never-passing ones);
* :mod:`.shards`: merging the shards of a Slurm array run;
* :mod:`.plan`: jobs and GPU-hours for N rubrics from a measured run's tokens per rubric.
* :mod:`.stage`: what a pipeline stage calls (rows in, kept rubrics by row id out).
"""

from rubricrl.rubrics.generate.config import GenerateConfig, load_generate_config
from rubricrl.rubrics.generate.run import generate_rubrics
from rubricrl.rubrics.generate.summary import side_paths

__all__ = ["GenerateConfig", "generate_rubrics", "load_generate_config", "side_paths"]
