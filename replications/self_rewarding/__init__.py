"""Self-rewarding rubric RL (Paper B, arXiv 2509.25534): the policy grades its own rollouts against HealthBench rubrics.

``rubricrl replicate self_rewarding`` runs data -> train -> eval -> report. Where each stage's code lives:

* :mod:`.config`: the ``self_rewarding:`` config section (data, self grader, teacher, eval);
* :mod:`.datasets`: the HealthBench subset and its fixed-seed train / held-out split;
* :mod:`.stages`: the stage functions and their order (the self-grading TRL reward function);
* :mod:`.evaluation`: held-out responses before / after training, graded by a fixed judge;
* :mod:`.recipes`: its NeMo RL cluster recipes (``nemo_rl/*.yaml`` are generated from them);
* :mod:`.report`: the run's markdown + PNG report;
* :mod:`.common`: what those share (fixed graders, the agreement file, the ungraded policy).
"""

from replications.self_rewarding import stages as pipeline
from replications.self_rewarding.config import SECTION, SelfRewardingConfig
from replications.self_rewarding.recipes import RECIPES
from rubricrl.papers import Paper

PAPER = Paper(
    name="self_rewarding",
    title="Self-rewarding rubric RL",
    arxiv="2509.25534",
    stages=pipeline.stages,
    sections={SECTION: SelfRewardingConfig},
    training_stages=pipeline.TRAINING_STAGES,
    recipes=RECIPES,
    eval_suite=("self_rewarding",),
    expected="expected.yaml",
)
