"""Glue between lm-evaluation-harness task folders (``eval/tasks/``) and rubricrl.

Each task folder's ``utils.py`` is a few lines that point the harness's hooks (``custom_dataset``,
``process_results``, aggregations, ``class``) at the modules here:

* :mod:`.judging`: which judge config a judged task uses (task metadata ``judge``, else
  ``$RUBRICRL_EVAL_JUDGE``, else the shipped ``smollm2-vllm``), built once per process;
* :mod:`.healthbench`: HealthBench documents, grading through the judge, and corpus metrics that are
  :func:`rubricrl.scoring.healthbench.score_records` over the graded records;
* :mod:`.meta_eval`: HealthBench meta-evaluation (a grader's pairwise agreement with physicians);
* :mod:`.writing`: WritingBench and the Creative-Writing-v3-style rubric task (tiered judge scores);
* :mod:`.ifeval_offline`: lm-eval's IFEval checkers without NLTK downloads;
* :mod:`.ifscale`: generated keyword-inclusion instances and their accuracy;
* :mod:`.chat_task`: a harness task class that sends multi-turn conversations as chat messages.

Importing this package does not import the harness; :mod:`.chat_task` and :mod:`.ifeval_offline` do.
"""
