"""JSONL helpers for the data loaders; the implementation lives in :mod:`rubricrl.jsonl`."""

from rubricrl.jsonl import iter_jsonl, read_jsonl_objects, write_atomic, write_jsonl_atomic

iter_jsonl_lines = iter_jsonl  # name used by the grade command and earlier code

__all__ = ["iter_jsonl", "iter_jsonl_lines", "read_jsonl_objects", "write_atomic", "write_jsonl_atomic"]
