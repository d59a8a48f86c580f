"""Run lm-eval's IFEval checkers without network: no NLTK data download, our sentence splitter.

lm-eval's ``lm_eval.tasks.ifeval.instructions_util`` downloads NLTK's ``punkt_tab`` when it is
imported, counts sentences with NLTK's punkt model (``count_sentences``) and tokenises words with
``nltk.word_tokenize`` (punkt again, for the capital-word check). :func:`install` makes all three work
offline, explicitly and in one place:

1. the import runs with ``nltk.download`` replaced by a function that downloads nothing (and logs
   that it was asked), then ``nltk.download`` is restored;
2. ``instructions_util.count_sentences`` becomes :func:`count_sentences`: the number of sentences
   from rubricrl's rule-based splitter (:func:`rubricrl.rubrics.verifiers.textutil.sentences`);
3. ``instructions_util.nltk`` (the name the checkers reach NLTK through) becomes a proxy whose
   ``word_tokenize`` splits sentences with the same splitter and words with NLTK's own word tokenizer
   (pure regex, no data files); every other attribute is NLTK's.

Nothing else of the harness changes; the checkers, their arguments and the strict/loose logic are
lm-eval's. Differences from a punkt-based run can only come from sentence boundaries: our splitter
also ends a sentence at a paragraph, list item or heading, which punkt does not. The patch applies to
the whole process (the harness's own ``ifeval`` task run in the same process uses it too).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import sys
import types
from typing import Any

from rubricrl.rubrics.verifiers.textutil import sentences

log = logging.getLogger(__name__)

MODULE = "lm_eval.tasks.ifeval.instructions_util"
_MARK = "_rubricrl_offline"


def count_sentences(text: str) -> int:
    """Number of sentences in ``text`` (rubricrl's offline splitter)."""
    return len(sentences(text))


def word_tokenize(text: str, language: str = "english", preserve_line: bool = False) -> list[str]:
    """``nltk.word_tokenize`` with rubricrl's sentence splitter in place of punkt."""
    from nltk.tokenize import NLTKWordTokenizer

    tok = NLTKWordTokenizer()
    parts = [text] if preserve_line else sentences(text)
    return [t for s in parts for t in tok.tokenize(s)]


class _OfflineNLTK(types.ModuleType):
    """Stands in for the ``nltk`` module inside ``instructions_util``: offline ``word_tokenize``."""

    def __init__(self, real: types.ModuleType):
        super().__init__("nltk")
        self._real = real
        self.word_tokenize = word_tokenize

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _no_download(*args: Any, **kwargs: Any) -> bool:
    log.info("IFEval offline: skipped nltk.download%s (rubricrl's sentence splitter is used instead)", args)
    return False


def install() -> types.ModuleType:
    """Import lm-eval's IFEval helpers without a download and patch them (idempotent).

    Returns:
        The patched ``instructions_util`` module.
    """
    mod = sys.modules.get(MODULE)
    if mod is not None and getattr(mod, _MARK, False):
        return mod
    import nltk

    if mod is None:
        real_download = nltk.download
        nltk.download = _no_download
        try:  # the harness prints "Downloaded punkt_tab" after calling download: not true here
            with contextlib.redirect_stdout(io.StringIO()):
                mod = importlib.import_module(MODULE)
        finally:
            nltk.download = real_download
    mod.count_sentences = count_sentences
    mod.nltk = _OfflineNLTK(nltk)
    setattr(mod, _MARK, True)
    log.info("IFEval offline: sentence counting and word tokenisation use rubricrl's splitter")
    return mod


def installed() -> bool:
    """Whether :func:`install` has patched the harness module in this process."""
    mod = sys.modules.get(MODULE)
    return bool(mod is not None and getattr(mod, _MARK, False))
