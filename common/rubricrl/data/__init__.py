"""Dataset loaders: HealthBench (official downloads, offline copy, easy/hard subsets, splits) and
WritingBench (offline copy); locating installed data files and the download cache."""

from rubricrl.data.healthbench import (
    BASE_URL,
    EXAMPLE_SUBSETS,
    OFFICIAL,
    fetch,
    load_examples,
    load_subset,
    offline_path,
    split_heldout,
    subtract,
    verified_path,
)
from rubricrl.data.paths import data_dir, installed_data_file
from rubricrl.data.writingbench import load_writingbench

__all__ = [
    "BASE_URL",
    "EXAMPLE_SUBSETS",
    "OFFICIAL",
    "data_dir",
    "fetch",
    "installed_data_file",
    "load_examples",
    "load_subset",
    "load_writingbench",
    "offline_path",
    "split_heldout",
    "subtract",
    "verified_path",
]
