"""A harness task whose documents are whole conversations (HealthBench prompts have 1 to 9 turns).

lm-eval's ``ConfigurableTask`` builds one user turn per document. :class:`ChatTask` keeps every turn of
``doc["messages"]`` (a list of ``{"role", "content"}``): with ``--apply_chat_template`` the list goes
through the model's chat template (for ``local-chat-completions`` the harness sends the messages as
they are); without it the conversation is written out as ``role: content`` blocks ending with
``assistant:``. Use it from a task YAML with ``class: !function utils.ChatTask`` (``utils`` re-exports
it); every other key of the YAML applies as for any task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lm_eval.api.task import ConfigurableTask

Message = dict[str, str]


def transcript(messages: list[Message], system_instruction: str | None = None) -> str:
    """Plain-text rendering of a conversation, ending with an open ``assistant:`` turn."""
    parts = [f"system: {system_instruction}"] if system_instruction else []
    parts += [f"{m['role']}: {m['content']}" for m in messages]
    return "\n\n".join(parts + ["assistant:"])


def chat_messages(messages: list[Message], system_instruction: str | None = None) -> list[Message]:
    """The conversation as chat messages, with ``system_instruction`` as a leading system turn."""
    out = [{"role": "system", "content": system_instruction}] if system_instruction else []
    return out + [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]


class ChatTask(ConfigurableTask):
    """``ConfigurableTask`` that sends ``doc["messages"]`` as a multi-turn chat (no few-shot)."""

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any):
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        super().__init__(config=config, **kwargs)

    def fewshot_context(  # type: ignore[override]
        self,
        doc: dict,
        num_fewshot: int,
        system_instruction: str | None = None,
        apply_chat_template: bool = False,
        fewshot_as_multiturn: bool = False,
        chat_template: Callable[..., str] | None = None,
        gen_prefix: str | None = None,
    ) -> str | list[str]:
        messages = doc.get("messages")
        if not messages:
            return super().fewshot_context(
                doc,
                num_fewshot,
                system_instruction,
                apply_chat_template,
                fewshot_as_multiturn,
                chat_template,
                gen_prefix,
            )
        if num_fewshot:
            raise ValueError(
                f"{self.config.task}: few-shot is not supported for conversation tasks (got {num_fewshot})"
            )
        if apply_chat_template and chat_template is not None:
            return chat_template(chat_messages(messages, system_instruction), add_generation_prompt=True)
        return transcript(messages, system_instruction)
