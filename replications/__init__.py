"""The papers' pipelines: one package per replication, ``replications/<paper>/``.

Each paper folder holds its README, pinned versions, configs and expectations beside its own pipeline code
(stages, config section, data, evaluation, report, NeMo RL recipes), and exposes a ``PAPER`` object
(:class:`rubricrl.papers.Paper`) in its ``__init__.py``. The library finds papers by that convention
(:func:`rubricrl.papers.all_papers`); it never names one.
"""
