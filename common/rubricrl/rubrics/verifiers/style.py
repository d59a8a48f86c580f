"""Style-anchor verifiers: AI-speak phrases and stock flourishes that a plain, concrete voice avoids."""

from __future__ import annotations

import re

from rubricrl.rubrics.verifiers.registry import VerifierResult, verifier
from rubricrl.rubrics.verifiers.textutil import phrase_pattern, sentences, words

# Phrases that mark machine-flavoured prose. Matched case-insensitively at word boundaries; a few use
# regex alternations for inflections. Kept to markers that are rare in plain human prose.
AI_SPEAK: tuple[str, ...] = (
    r"delv(?:e|es|ed|ing)",
    r"tapestr(?:y|ies)",
    r"(?:a|is a|stands as a|serves as a) testament to",
    r"in today'?s (?:fast-paced|digital|ever-changing|modern) (?:world|age|landscape)",
    r"ever-(?:evolving|changing) landscape",
    r"navigat(?:e|es|ing) the (?:complexities|intricacies|nuances)",
    r"it(?:'s| is) (?:important|worth|crucial) (?:to note|noting|to remember)",
    r"embark(?:s|ed|ing)? on a journey",
    r"unlock(?:s|ing)? the (?:full )?potential",
    r"harness(?:es|ing)? the power",
    r"a symphony of",
    r"(?:an? )?intricate dance",
    r"a beacon of",
    r"in the realm of",
    r"rich (?:and vibrant )?(?:history|heritage) and culture",
    r"serves? as a (?:powerful |poignant |stark )?reminder",
    r"let'?s dive (?:in|into)",
    r"dive deep(?:er)? into",
    r"(?:game|a) game-changer",
    r"multifaceted",
    r"plays? a (?:pivotal|crucial|vital) role",
    r"in conclusion",
    r"the (?:journey|dance) of (?:life|self-discovery)",
    r"whispers? of (?:the )?(?:past|wind|ancient)",
    r"a kaleidoscope of",
    r"indelible mark",
)


@verifier("no_ai_speak")
def no_ai_speak(response: str, extra_phrases: list[str] | None = None, max_hits: int = 0) -> VerifierResult:
    """The text avoids stock AI-speak ("delve", "tapestry", "a testament to", "in today's fast-paced world"...).

    Args:
        response: the text to check.
        extra_phrases: further plain phrases to forbid (matched at word boundaries, case-insensitive).
        max_hits: number of hits tolerated (0: none).

    Returns:
        passed when the number of hits is at most ``max_hits``; score decays with each hit.
    """
    pats = [rf"(?<!\w){p}(?!\w)" for p in AI_SPEAK] + [phrase_pattern(p) for p in (extra_phrases or [])]
    hits = [m.group(0) for p in pats for m in re.finditer(p, response, re.I)]
    return VerifierResult(len(hits) <= max_hits, 1.0 / (1 + len(hits)), f"AI-speak: {hits}" if hits else "none")


_MORAL_OPENERS = re.compile(
    r"^(?:and\s+)?(?:in the end|ultimately|in conclusion|at the end of the day|the lesson(?: here)? is|"
    r"this (?:story|tale|moment|experience) (?:reminds|teaches|shows) us|(?:and )?(?:she|he|they|i|we) "
    r"(?:finally )?(?:learned|realized|understood) that|sometimes,? the (?:greatest|most|best))",
    re.I,
)


@verifier("no_moral_summary")
def no_moral_summary(response: str) -> VerifierResult:
    """The last sentence is not a tidy moral ("In the end, she learned that...", "This story reminds us...").

    Args:
        response: the text to check.
    """
    sents = sentences(response)
    last = sents[-1].strip("\"'\u201c\u201d*_ ") if sents else ""
    moral = bool(_MORAL_OPENERS.match(last))
    return VerifierResult(
        not moral, 0.0 if moral else 1.0, f"closing moral: {last[:60]!r}" if moral else "no moral close"
    )


@verifier("lexical_diversity")
def lexical_diversity(response: str, min_ratio: float = 0.4, window: int = 100) -> VerifierResult:
    """Vocabulary is varied: mean type/token ratio over windows of ``window`` words is at least ``min_ratio``.

    Args:
        response: the text to check.
        min_ratio: lowest acceptable mean type/token ratio (0..1).
        window: window length in words (texts shorter than a window use the whole text).
    """
    toks = [w.lower() for w in words(response)]
    if not toks:
        return VerifierResult(False, 0.0, "no words")
    spans = [toks[i : i + window] for i in range(0, max(1, len(toks) - window + 1), max(1, window // 2))]
    ratio = sum(len(set(s)) / len(s) for s in spans) / len(spans)
    return VerifierResult(ratio >= min_ratio, min(1.0, ratio / min_ratio), f"type/token {ratio:.2f}")
