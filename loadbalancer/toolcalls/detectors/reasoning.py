"""Reasoning sections and protocol framing: the markup around calls and prose that is neither.

Reasoning openers and their closers come from the families' reasoning parsers (Qwen/DeepSeek
<think>, Seed-OSS, Magistral [THINK], Cohere, Kimi-VL, MiniMax-M3, Apertus, Gemma 4, Kimi-K3,
Inkling). Framing is what a chat template writes around a turn (end-of-turn tokens, Cohere's
response blocks and citations, Hunyuan's <answer>, ERNIE's <response>, GigaChat's trailing </s>):
it is dropped so no protocol token reaches the client as text.
"""
from __future__ import annotations

import re

from loadbalancer.toolcalls.scan import NEED_MORE, DetectorResult, Literals, Markup, ScanContext, match_literal, skip_space

_SECTIONS: dict[str, tuple[str, ...]] = {
    "<think>": ("</think>",),
    "<seed:think>": ("</seed:think>",),
    "[THINK]": ("[/THINK]",),
    # Cohere ends reasoning with END_THINKING, or by starting the answer without it
    "<|START_THINKING|>": ("<|END_THINKING|>", "<|START_RESPONSE|>", "<|START_TEXT|>"),
    "\u25c1think\u25b7": ("\u25c1/think\u25b7",),
    "<mm:think>": ("</mm:think>",),
    "<|inner_prefix|>": ("<|inner_suffix|>",),
    "<|channel>thought": ("<channel|>",),
    "<|open|>think<|sep|>": ("<|close|>think<|sep|>",),
    "<|message_model|><|content_thinking|>": ("<|end_message|>",),
}
REASONING_OPENERS = tuple(_SECTIONS)
_SECTION_OPENERS = Literals(REASONING_OPENERS)
_STRAY_CLOSERS = tuple(closer for closers in _SECTIONS.values() for closer in closers[:1])
_STRAY = Literals(_STRAY_CLOSERS)

_TOKENS = (
    "<|START_RESPONSE|>", "<|END_RESPONSE|>", "<|START_TEXT|>", "<|END_TEXT|>", "<|END_OF_TURN_TOKEN|>",
    "<|START_OF_TURN_TOKEN|>", "<|CHATBOT_TOKEN|>", "<|return|>", "<|end|>", "<|call|>", "<|eom_id|>",
    "<|eot_id|>", "<|im_end|>", "<|endoftext|>", "<|end_of_text|>", "<|eom|>", "<|eot|>", "<|end_message|>",
    "<|content_text|>", "<|message_model|>", "<|open|>response<|sep|>", "<|close|>response<|sep|>",
    "<\uff5cend\u2581of\u2581sentence\uff5c>", "<|end\u2581of\u2581sentence|>", "<|python_end|>", "<|role_sep|>",
    "<co>",
)
_TOKEN_LITERALS = Literals(_TOKENS)
_WRAPPERS = ("answer", "response")
_CITATION_END = re.compile(r"</co:[^<>\n]{0,80}>")
_END_OF_TEXT = "</s>"
FRAMING_OPENERS = _TOKENS + _STRAY_CLOSERS + tuple(f"<{name}>" for name in _WRAPPERS) \
    + tuple(f"</{name}>" for name in _WRAPPERS) + ("</co:", _END_OF_TEXT)

_GRANITE_THOUGHTS = ("Here is my thought process:", "Here's my thought process:")
_GRANITE_RESPONSES = ("Here is my response:", "Here's my response:")
_HARMONY_BARE = "analysis"           # gpt-oss with special tokens stripped: analysis…assistantfinal…
_HARMONY_BARE_FINAL = "assistantfinal"
_HARMONY_BARE_REACH = 64_000
_HUNYUAN_PREFIX = "助手："


def detect_reasoning_open(text: str, start: int, context: ScanContext) -> DetectorResult:
    """The opener of a reasoning section; it runs until one of its closers.

    Only where no prose came before it in this turn: in the middle of an answer a <think> is a
    word the answer talks about, not the start of reasoning.
    """
    if context.prose_before:
        return None
    end = _SECTION_OPENERS.match(text, start, context.final)
    if not isinstance(end, int):
        return end
    return Markup(end, reasoning_closers=_SECTIONS[text[start:end]])


def detect_framing(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Template tokens, stray reasoning closers, paired answer wrappers, citations, a final </s>."""
    end = _TOKEN_LITERALS.match(text, start, context.final)
    if end is not None:
        return end if end is NEED_MORE else Markup(end)
    end = _STRAY.match(text, start, context.final)
    if end is not None:
        return end if end is NEED_MORE else Markup(end, new_turn=True)
    for name in _WRAPPERS:
        end = match_literal(text, start, (f"<{name}>",), context.final)
        if end is NEED_MORE or isinstance(end, int) and context.turn_start:
            return end if end is NEED_MORE else Markup(end, opens_wrapper=name)
        end = match_literal(text, start, (f"</{name}>",), context.final)
        if end is NEED_MORE or isinstance(end, int) and name in context.wrappers:
            return end if end is NEED_MORE else Markup(end, closes_wrapper=name)
    if text.startswith("</co:", start) or not context.final and "</co:".startswith(text[start:]):
        found = _CITATION_END.match(text, start)
        if found:
            return Markup(found.end())
        return NEED_MORE if not context.final and len(text) - start < 90 else None
    return _end_of_text(text, start, context)


def _end_of_text(text: str, start: int, context: ScanContext) -> DetectorResult:
    """GigaChat's </s>: framing only when nothing but whitespace follows it."""
    end = match_literal(text, start, (_END_OF_TEXT,), context.final)
    if not isinstance(end, int):
        return end
    after = skip_space(text, end)
    if after < len(text):
        return None
    return Markup(len(text)) if context.final else NEED_MORE


_BLOCK_START_CHARS = frozenset(label[0] for label in _GRANITE_THOUGHTS + (_HUNYUAN_PREFIX, _HARMONY_BARE))


def detect_block_start(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Markers that count only at the very start of a text: Granite's reasoning label, bare Harmony, Hunyuan's prefix."""
    if text[start:start + 1] not in _BLOCK_START_CHARS:
        return None
    for labels in (_GRANITE_THOUGHTS, (_HUNYUAN_PREFIX,)):
        end = match_literal(text, start, labels, context.final)
        if end is NEED_MORE:
            return NEED_MORE
        if isinstance(end, int):
            closers = _GRANITE_RESPONSES if labels is _GRANITE_THOUGHTS else ()
            if closers and skip_space(text, end) >= len(text) and not context.final:
                return NEED_MORE  # the reasoning starts after the spaces, which may still be arriving
            return Markup(skip_space(text, end) if closers else end, reasoning_closers=closers)
    end = match_literal(text, start, (_HARMONY_BARE,), context.final)
    if not isinstance(end, int):
        return end
    if end < len(text) and not text[end].isupper():
        return None  # "analysis of …" is prose; stripped Harmony runs the channel name into the text
    if text.find(_HARMONY_BARE_FINAL, end, end + _HARMONY_BARE_REACH) >= 0:
        return Markup(end, reasoning_closers=(_HARMONY_BARE_FINAL,))
    return NEED_MORE if not context.final and len(text) - end < _HARMONY_BARE_REACH else None
