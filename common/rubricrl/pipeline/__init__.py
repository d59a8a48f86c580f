"""Pipelines of the replications: what is generated from every paper (:mod:`.generated`); the papers themselves
are found by :mod:`rubricrl.papers`."""
