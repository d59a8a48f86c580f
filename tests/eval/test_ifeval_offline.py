"""lm-eval's IFEval checkers run offline after rubricrl.evaluation.ifeval_offline.install()."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_install_never_downloads_and_patches_the_harness_helpers():
    # A fresh interpreter: the harness module is imported (and would download punkt_tab) only once.
    code = textwrap.dedent("""
        import nltk
        calls = []
        nltk.download = lambda *a, **k: calls.append(a) or True   # any real call would be recorded
        from rubricrl.evaluation import ifeval_offline
        mod = ifeval_offline.install()
        assert calls == [], calls
        assert nltk.download.__name__ == "<lambda>"               # restored after the import
        assert mod.count_sentences is ifeval_offline.count_sentences
        assert mod.nltk.word_tokenize is ifeval_offline.word_tokenize
        assert ifeval_offline.install() is mod and ifeval_offline.installed()
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_sentence_and_word_helpers():
    from rubricrl.evaluation import ifeval_offline as o

    assert o.count_sentences("Dr. Smith arrived at 3.30 p.m. today. He left! Did he?") == 3
    assert o.count_sentences("") == 0
    assert o.word_tokenize("THE END. Not THE start.") == ["THE", "END", ".", "Not", "THE", "start", "."]


def test_harness_checkers_strict_and_loose_offline():
    from rubricrl.evaluation import ifeval_offline

    ifeval_offline.install()
    from lm_eval.tasks.ifeval import utils

    doc = {"key": 1, "prompt": "Answer in fewer than 3 sentences, with at least 2 words in all capitals.",
           "instruction_id_list": ["length_constraints:number_sentences", "change_case:capital_word_frequency"],
           "kwargs": [{"relation": "less than", "num_sentences": 3},
                      {"capital_relation": "at least", "capital_frequency": 2}]}
    good = utils.process_results(doc, ["It is VERY simple. Do it NOW."])
    assert good["prompt_level_strict_acc"] is True and good["inst_level_strict_acc"] == [True, True]
    bad = utils.process_results(doc, ["One. Two. Three sentences here, all lower case."])
    assert bad["inst_level_strict_acc"] == [False, False] and bad["prompt_level_loose_acc"] is False
    # loose: dropping the first line rescues a response whose preamble breaks the sentence count
    loose = utils.process_results(doc, ["Sure. Here it is. As asked.\nIt is VERY simple. Do it NOW."])
    assert loose["inst_level_strict_acc"][0] is False and loose["inst_level_loose_acc"][0] is True
