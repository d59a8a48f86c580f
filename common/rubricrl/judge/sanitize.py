"""What graded content goes through before a judge sees it: control tokens, invisible text, length.

A policy under RL writes the text its judge reads, so everything from the conversation and the graded
response is treated as hostile before it is put in a judge prompt (:class:`ContentGuard`):

1. **Compatibility folding** (homoglyphs): NFKC, so that fullwidth, mathematical-alphanumeric,
   ligature and similar look-alike forms read as the plain characters they imitate (``ＧＲＡＤＥＲ``,
   ``𝐜𝐫𝐢𝐭𝐞𝐫𝐢𝐚_𝐦𝐞𝐭``). Superscripts, subscripts and vulgar fractions are kept (NFKC would turn
   ``x²`` into ``x2`` and change the meaning). NFKC does not map one script onto another: a Cyrillic
   ``а`` inside a Latin word stays what it is.
2. **Invisible and bidi characters made visible**: every format character (Unicode category ``Cf``:
   zero-width space / joiners U+200B-U+200D, word joiner U+2060, BOM U+FEFF, bidi marks and controls
   U+200E/U+200F, U+202A-U+202E, U+2066-U+2069, tag characters U+E0000-U+E007F, soft hyphen ...),
   control characters other than tab / newline / carriage return, Hangul fillers and variation
   selectors used as a hidden channel are replaced by a visible marker such as ``[U+200B]``
   (a run: ``[U+200B x5]``, or ``[12 invisible characters U+E0041..U+E0074]``). Kept as they are: a
   zero-width joiner between two emoji and one variation selector after a character (emoji
   presentation); a BOM at the very start is dropped. Line and paragraph separators become newlines.
3. **Control tokens defused**: every string that a chat model's tokenizer turns into a control token
   (``<|im_end|>``, ``<|im_start|>``, ``<|endoftext|>``, ``<think>`` / ``</think>``, Llama 3's
   ``<|eot_id|>`` / ``<|start_header_id|>``, ``[INST]``, ``<s>`` / ``</s>``, Gemma's
   ``<start_of_turn>`` ...) is written with its first bracket as an HTML character reference:
   ``<|im_end|>`` becomes ``&lt;|im_end|>`` and ``[INST]`` becomes ``&#91;INST]``. The judge still
   reads what the response wrote, but no tokenizer matches the control token any more, so graded
   text cannot close its chat turn or open a new one. Covered: a generic pattern for every ``<|...|>``
   and DeepSeek's ``<｜...｜>`` form, a list of the named tags of common chat templates
   (:data:`NAMED_CONTROL_TOKENS`), and the judge tokenizer's own special and added tokens when its
   files are available locally (:func:`tokenizer_control_tokens`). A token without any bracket or
   bar (e.g. ``madeupword0000``) is left alone: it cannot be defused without rewriting words, and no
   chat template uses such a token as a turn marker.

Steps 1-3 run in that order (folding can produce ``<|``; removing the leading BOM cannot create a
token because tokens are defused last) and are what ``JudgeConfig.sanitize`` switches. The conversation
delimiters (``<turn-...>``, :func:`rubricrl.judge.prompts.neutralise`) are defused always, whatever
``sanitize`` says.

4. **Length cap** (``JudgeConfig.max_response_chars``): a longer response keeps its first two thirds
   and last third of the budget, cut at whitespace where one is near, with
   ``[... N characters cut by the grader ...]`` in place of the middle (:func:`cut_middle`). The
   judge counts it (``JudgeStats.truncated``). The cap applies to the graded response only.

The original text is never changed: rollout records keep what the policy wrote; only the judge prompt
carries the sanitised view.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

#: Named control tokens of common chat templates and tokenizers (beside every ``<|...|>`` form).
NAMED_CONTROL_TOKENS: tuple[str, ...] = (
    # reasoning and tool blocks (Qwen3, DeepSeek-R1, Hermes-style tool calling)
    "<think>",
    "</think>",
    "<thinking>",
    "</thinking>",
    "<reasoning>",
    "</reasoning>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<tools>",
    "</tools>",
    # SentencePiece / Llama 2 / Mistral
    "<s>",
    "</s>",
    "<unk>",
    "<pad>",
    "<mask>",
    "<sep>",
    "<cls>",
    "<<SYS>>",
    "<</SYS>>",
    "[INST]",
    "[/INST]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[TOOL_CALLS]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[TOOL_CONTENT]",
    "[THINK]",
    "[/THINK]",
    "[IMG]",
    "[IMG_BREAK]",
    "[IMG_END]",
    "[PREFIX]",
    "[MIDDLE]",
    "[SUFFIX]",
    # Gemma
    "<bos>",
    "<eos>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
    # StarCoder / SmolLM
    "<repo_name>",
    "<reponame>",
    "<file_sep>",
    "<filename>",
    "<gh_stars>",
    "<issue_start>",
    "<issue_comment>",
    "<issue_closed>",
    "<jupyter_start>",
    "<jupyter_text>",
    "<jupyter_code>",
    "<jupyter_output>",
    "<jupyter_script>",
    "<empty_output>",
    "<fim_prefix>",
    "<fim_middle>",
    "<fim_suffix>",
    "<fim_pad>",
    "<commit_before>",
    "<commit_msg>",
    "<commit_after>",
)
#: Patterns for whole families: ``<|anything|>`` (ChatML, Llama 3, Phi, Granite, Command R, harmony),
#: DeepSeek's fullwidth-bar form, numbered placeholders (``<unused12>``, ``<extra_id_3>``).
GENERIC_CONTROL_PATTERNS: tuple[str, ...] = (
    r"<\|[^<>|\n]{1,100}\|>",
    r"<\uff5c[^<>\uff5c\n]{1,100}\uff5c>",
    r"<(?:unused|extra_id_|reserved_special_token_|special_)\d{1,6}>",
)
_BREAKABLE = "<[{|\uff5c"
_ENTITY = {"<": "&lt;", "[": "&#91;", "{": "&#123;", "|": "&#124;", "\uff5c": "&#65372;"}
_TOKEN_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
CUT_MARK = "[... {n} characters cut by the grader ...]"
MIN_RESPONSE_CHARS = 200
#: Default response cap: about 4,000 tokens of English, far above a normal answer, far below any
#: judge's context. Small-context judges set their own (``configs/judge/smollm2-*.yaml``).
DEFAULT_MAX_RESPONSE_CHARS = 16000


# --------------------------------------------------------------------------- 1. compatibility folding

_KEEP_TAGS = ("<super>", "<sub>", "<fraction>")


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    if unicodedata.decomposition(ch).startswith(_KEEP_TAGS):
        return ch
    return unicodedata.normalize("NFKC", ch)


def fold_compat(text: str) -> str:
    """NFKC, except that superscripts, subscripts and vulgar fractions keep their form (see module doc)."""
    if text.isascii():
        return text
    folded = "".join(ch if ch < "\x80" else _fold_char(ch) for ch in text)
    return unicodedata.normalize("NFC", folded)


# --------------------------------------------------------------------------- 2. invisible characters

_HANGUL_FILLERS = "\u115f\u1160\u3164\uffa0"
_ZWJ, _BOM = "\u200d", "\ufeff"


@lru_cache(maxsize=8192)
def _is_hidden(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    cat = unicodedata.category(ch)
    if cat in ("Cf", "Cc"):
        return True
    o = ord(ch)
    return ch in _HANGUL_FILLERS or 0xE0100 <= o <= 0xE01EF or 0xFE00 <= o <= 0xFE0F


def _is_pictographic(ch: str) -> bool:
    o = ord(ch)
    return 0x1F000 <= o <= 0x1FAFF or 0x2600 <= o <= 0x27BF or 0x1F1E6 <= o <= 0x1F1FF


def _marker(run: str) -> str:
    codes = [f"U+{ord(c):04X}" for c in run]
    if len(set(run)) == 1:
        return f"[{codes[0]}]" if len(run) == 1 else f"[{codes[0]} x{len(run)}]"
    if len(run) <= 4:
        return "".join(f"[{c}]" for c in codes)
    return f"[{len(run)} invisible characters U+{ord(min(run)):04X}..U+{ord(max(run)):04X}]"


def _benign(run: str, before: str, after: str) -> bool:
    """Emoji joiners and presentation selectors, which render as part of what they join."""
    selectors = all(0xFE00 <= ord(c) <= 0xFE0F for c in run)
    if len(run) == 1 and selectors:
        return bool(before) and not _is_hidden(before)
    joiners = all(c == _ZWJ or 0xFE00 <= ord(c) <= 0xFE0F for c in run) and run.count(_ZWJ) == 1
    return len(run) <= 2 and joiners and _is_pictographic(before) and _is_pictographic(after)


_PLAIN = re.compile(r"[\t\n\r\x20-\x7e]*")


def reveal_invisible(text: str) -> str:
    """Replace invisible, bidi and control characters by visible markers (see module doc, step 2)."""
    if text.startswith(_BOM):
        text = text.lstrip(_BOM)
    text = text.replace("\u2028", "\n").replace("\u2029", "\n")
    if _PLAIN.fullmatch(text):
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if not _is_hidden(text[i]):
            out.append(text[i])
            i += 1
            continue
        j = i
        while j < n and _is_hidden(text[j]):
            j += 1
        run = text[i:j]
        out.append(run if _benign(run, text[i - 1] if i else "", text[j] if j < n else "") else _marker(run))
        i = j
    return "".join(out)


# --------------------------------------------------------------------------- 3. control tokens


def _defuse(token: str) -> str:
    for i, ch in enumerate(token):
        if ch in _BREAKABLE:
            return token[:i] + _ENTITY[ch] + token[i + 1 :]
    return token


def breakable(token: str) -> bool:
    """Whether ``token`` looks like markup that can be defused (a bracket or bar, no whitespace)."""
    return 2 <= len(token) <= 100 and not any(c.isspace() for c in token) and any(c in _BREAKABLE for c in token)


class ControlTokens:
    """Finds and defuses control-token strings in text.

    Args:
        extra: tokens to cover beside the generic patterns and :data:`NAMED_CONTROL_TOKENS` (e.g. the
            judge tokenizer's special and added tokens); those without a bracket or bar are skipped.
    """

    def __init__(self, extra: Iterable[str] = ()):
        named = {t for t in (*NAMED_CONTROL_TOKENS, *extra) if breakable(t)}
        self.tokens: frozenset[str] = frozenset(named)
        literal = "|".join(re.escape(t) for t in sorted(named, key=len, reverse=True))
        # Case-insensitive: a tokenizer matches its tokens exactly, but "<S>" defused costs nothing.
        self._re = re.compile("|".join((*GENERIC_CONTROL_PATTERNS, literal)), re.IGNORECASE)

    def find(self, text: str) -> list[str]:
        """Control-token strings in ``text``, in order."""
        return [m.group(0) for m in self._re.finditer(text)]

    def defuse(self, text: str) -> str:
        """``text`` with every control-token string written so that no tokenizer matches it."""
        for _ in range(4):  # defusing only removes brackets, so this ends; the loop is a guard
            new = self._re.sub(lambda m: _defuse(m.group(0)), text)
            if new == text:
                return new
            text = new
        return text


def tokenizer_control_tokens(path: str | Path) -> list[str]:
    """Special and added tokens listed by the tokenizer files in directory ``path`` (no import of transformers).

    Reads ``tokenizer.json`` (``added_tokens``), ``tokenizer_config.json`` (``added_tokens_decoder``,
    ``additional_special_tokens``, ``bos_token`` ...) and ``special_tokens_map.json``. Returns an empty
    list when ``path`` is not a directory or has none of those files; unreadable files are logged and
    skipped.
    """
    d = Path(path)
    if not d.is_dir():
        return []
    found: list[str] = []

    def take(x: object) -> None:
        if isinstance(x, str):
            found.append(x)
        elif isinstance(x, dict):
            take(x.get("content"))
        elif isinstance(x, list):
            for y in x:
                take(y)

    for name in _TOKEN_FILES:
        f = d / name
        if not f.is_file():
            continue
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            log.warning("cannot read tokenizer file %s for control tokens: %s", f, e)
            continue
        if not isinstance(data, dict):
            continue
        take(data.get("added_tokens"))
        decoder = data.get("added_tokens_decoder")
        if isinstance(decoder, dict):
            take(list(decoder.values()))
        take(data.get("additional_special_tokens"))
        for key in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"):
            take(data.get(key))
    return sorted(set(found))


# --------------------------------------------------------------------------- 4. length


def cut_middle(text: str, max_chars: int) -> tuple[str, int]:
    """``text`` cut to at most ``max_chars`` characters with the cut marked; and how many characters were cut.

    Keeps about the first two thirds and the last third of the budget, moving each cut to a nearby
    whitespace (within 200 characters) so words stay whole.
    """
    if len(text) <= max_chars:
        return text, 0
    mark_len = len(CUT_MARK.format(n=len(text))) + 2  # the count has at most as many digits as len(text)
    budget = max(0, max_chars - mark_len)
    head_end = budget * 2 // 3
    tail_start = len(text) - (budget - head_end)
    ws = text.rfind(" ", max(0, head_end - 200), head_end)
    nl = text.rfind("\n", max(0, head_end - 200), head_end)
    if max(ws, nl) > 0:
        head_end = max(ws, nl)
    for sep in ("\n", " "):
        j = text.find(sep, tail_start, min(len(text), tail_start + 200))
        if j != -1:
            tail_start = j + 1
            break
    n = tail_start - head_end
    return text[:head_end] + "\n" + CUT_MARK.format(n=n) + "\n" + text[tail_start:], n


# --------------------------------------------------------------------------- the guard


@dataclass(frozen=True)
class ContentGuard:
    """Sanitises graded content for a judge prompt (see the module docstring).

    Attributes:
        sanitize: fold look-alikes, reveal invisible characters, defuse control tokens (steps 1-3).
        max_response_chars: cap on the (sanitised) response, or None for no cap (step 4).
        extra_tokens: control tokens beside the built-in list (the judge tokenizer's own).
    """

    sanitize: bool = True
    max_response_chars: int | None = None
    extra_tokens: tuple[str, ...] = ()
    _tokens: ControlTokens = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_response_chars is not None and self.max_response_chars < MIN_RESPONSE_CHARS:
            raise ValueError(f"max_response_chars must be at least {MIN_RESPONSE_CHARS}, got {self.max_response_chars}")
        object.__setattr__(self, "_tokens", _control_tokens(tuple(sorted(set(self.extra_tokens)))))

    @property
    def control_tokens(self) -> ControlTokens:
        return self._tokens

    def clean(self, text: str) -> str:
        """Steps 1-3 on ``text`` (unchanged when ``sanitize`` is off)."""
        if not self.sanitize or not text:
            return text
        return self._tokens.defuse(reveal_invisible(fold_compat(text)))

    def response(self, text: str, max_chars: int | None = None) -> tuple[str, int]:
        """The response as the judge sees it, and how many characters the cap cut (0: none).

        Args:
            text: the response as written.
            max_chars: a tighter cap than ``max_response_chars`` (a retry after the server said the
                prompt was too long); None uses ``max_response_chars``.
        """
        out = self.clean(text)
        cap = max_chars if max_chars is not None else self.max_response_chars
        if cap is None:
            return out, 0
        return cut_middle(out, max(MIN_RESPONSE_CHARS, cap))

    def conversation(self, turns: Sequence[dict[str, str]]) -> list[dict[str, str]]:
        """The conversation turns with their content cleaned (steps 1-3)."""
        return [{**t, "content": self.clean(str(t.get("content", "")))} for t in turns]


@lru_cache(maxsize=16)
def _control_tokens(extra: tuple[str, ...]) -> ControlTokens:
    return ControlTokens(extra)


#: What prompt rendering applies when the caller passes no guard of its own (no length cap).
DEFAULT_GUARD = ContentGuard()
