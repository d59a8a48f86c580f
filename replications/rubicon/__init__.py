"""Rubicon (arXiv 2508.12790): rubric-anchored RL in two stages, with a hacking analysis and a defense veto between.

``rubricrl replicate rubicon`` runs data -> filter -> stage1_rl -> hacking -> stage2_rl -> eval -> report.
Where each stage's code lives:

* :mod:`.config`: the ``rubicon:`` config section (data, filter, stages, hacking, eval);
* :mod:`.datasets`: the stage-1 constraint prompts and the stage-2 category prompts, with held-out splits;
* :mod:`.stages`: the stage functions and their order (the offline filter uses :mod:`rubricrl.data.filtering`);
* :mod:`.hacking`: the reward-hacking taxonomy mined from stage 1's rollouts;
* :mod:`.evaluation`: held-out evaluation of base, stage 1 and stage 2;
* :mod:`.recipes`: its NeMo RL cluster recipes (``nemo_rl/*.yaml`` are generated from them);
* :mod:`.report`: the run's markdown + PNG report;
* :mod:`.common`: what those share (stage files, rubric banks, judges).
"""

from replications.rubicon import stages as pipeline
from replications.rubicon.config import SECTION, RubiconConfig
from replications.rubicon.recipes import RECIPES
from rubricrl.papers import Paper

PAPER = Paper(
    name="rubicon",
    title="Rubicon",
    arxiv="2508.12790",
    stages=pipeline.stages,
    sections={SECTION: RubiconConfig},
    training_stages=pipeline.TRAINING_STAGES,
    recipes=RECIPES,
    eval_suite=("rubicon_writing", "rubicon_reasoning", "rubicon_general"),
    expected="expected.yaml",
)
