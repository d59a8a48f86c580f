"""Pipelines of the replications: discovery of ``replications/<paper>/`` (:mod:`rubricrl.pipeline.papers`)."""
