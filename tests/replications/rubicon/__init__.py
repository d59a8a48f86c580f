"""Tests of the Rubicon replication's pipeline (replications/rubicon/)."""
