"""Built-in verifiers: importing this module registers all of them in ``VERIFIERS``.

Modules, by family:

* ``length``: word_count, sentence_count, paragraph_count, char_count, line_count, sentence_length,
  paragraph_first_word
* ``keywords``: keywords_present, forbidden_words, keyword_frequency, letter_frequency, starts_with,
  ends_with, ends_with_question, phrase_count
* ``formats``: valid_json, bullet_count, numbered_list, section_count, markdown_headers,
  title_brackets, highlighted_sections, placeholders, wrapped_in_quotes, postscript, two_responses,
  no_markdown
* ``case``: all_lowercase, all_uppercase, capital_word_frequency, no_commas, no_exclamation,
  punctuation_count
* ``style``: no_ai_speak, no_moral_summary, lexical_diversity
* ``defense`` and ``repetition`` (detectors; ``passed=True`` means the hacking behaviour is present):
  prefatory_sycophancy, laudatory_self_evaluation, grader_addressed_text, grader_injection,
  ai_deflection, degenerate_repetition, keyword_stuffing, hidden_content
"""

from __future__ import annotations

from rubricrl.rubrics.verifiers import (  # noqa: F401  (each registers its verifiers on import)
    case,
    defense,
    formats,
    keywords,
    length,
    repetition,
    style,
)

DETECTORS = frozenset(
    {
        "prefatory_sycophancy",
        "laudatory_self_evaluation",
        "grader_addressed_text",
        "grader_injection",
        "ai_deflection",
        "degenerate_repetition",
        "keyword_stuffing",
        "hidden_content",
    }
)
"""Verifiers whose ``passed=True`` means an undesirable behaviour is present (use with negative criteria)."""
