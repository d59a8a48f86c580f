"""Tests of the self-rewarding replication's pipeline (replications/self_rewarding/)."""
