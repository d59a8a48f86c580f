"""IFScale hooks: generated instances (seeded, from words.txt) and keyword accuracy (rubricrl.evaluation.ifscale)."""

from pathlib import Path

from rubricrl.evaluation import ifscale

WORDS = Path(__file__).with_name("words.txt")
process_results = ifscale.process_results


def load_dataset(**kwargs) -> dict:
    """``dataset_kwargs``: ``n_keywords``, ``n_instances``, ``seed``; the word list is words.txt here."""
    return ifscale.load_dataset(word_list=str(kwargs.pop("word_list", None) or WORDS), **kwargs)
