"""The text tool-call detectors, one module per model family, and the table the parser tries them in.

Every detector is listed once with the literal openers it starts with; the parser asks only the
detectors whose opener begins like the text at hand, most specific first. Reasoning and framing
markup (`reasoning.py`) is always recognised; a provider's `tool_calls` format narrows only the
call detectors.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from loadbalancer.toolcalls.arguments import ToolIndex
from loadbalancer.toolcalls.detectors import (anthropic_xml, cohere, deepseek, gemma, generic_json, gigachat, glm,
                                              granite, harmony, hermes_qwen, kimi, lfm2, llama_pythonic, minimax,
                                              mistral, reasoning, tagged_json)
from loadbalancer.toolcalls.detectors.table import NAME_OPENER, DetectorTable, Entry
from loadbalancer.toolcalls.scan import DetectorResult, ScanContext

Detector = Callable[[str, int, ScanContext], DetectorResult]


def _calls(detect: Detector, openers: Sequence[str], *formats: str) -> Entry:
    return Entry(detect, tuple(openers), frozenset(formats))


# Most specific first: markup, then special tokens, then namespaced tags, then plain tags and JSON.
ENTRIES: tuple[Entry, ...] = (
    Entry(reasoning.detect_reasoning_open, reasoning.REASONING_OPENERS),
    _calls(harmony.detect_harmony, harmony.OPENERS, "harmony"),
    _calls(deepseek.detect_dsml, deepseek.DSML_OPENERS, "deepseek_dsml"),
    _calls(deepseek.detect_deepseek, deepseek.DEEPSEEK_OPENERS, "deepseek_v3", "deepseek_v31", "step3"),
    _calls(deepseek.detect_steptml, deepseek.STEPTML_OPENERS, "step3"),
    _calls(kimi.detect_kimi, kimi.K2_OPENERS, "kimi"),
    _calls(kimi.detect_kimi_k3, kimi.K3_OPENERS, "kimi_k3"),
    _calls(cohere.detect_cohere_action, cohere.OPENERS, "cohere"),
    _calls(gigachat.detect_gigachat, gigachat.OPENERS, "gigachat"),
    _calls(lfm2.detect_lfm2, lfm2.OPENERS, "lfm2", "pangu"),
    _calls(gemma.detect_gemma, gemma.OPENERS, "gemma"),
    _calls(glm.detect_keyed_tokens, glm.KEYED_TOKEN_OPENERS, "k2_horizon", "solar_open", "plamo"),
    _calls(minimax.detect_minimax, minimax.OPENERS, "minimax"),
    _calls(minimax.detect_minimax_m3, minimax.M3_OPENERS, "minimax"),
    _calls(tagged_json.detect_tagged_json, tagged_json.OPENERS, "tool_calls_array", "internlm", "apertus",
           "inkling", "hunyuan"),
    _calls(granite.detect_granite, granite.OPENERS, "granite"),
    _calls(llama_pythonic.detect_python_tag, llama_pythonic.PYTHON_TAG_OPENERS, "llama_json"),
    _calls(llama_pythonic.detect_pythonic, llama_pythonic.PYTHONIC_OPENERS, "pythonic"),
    _calls(hermes_qwen.detect_tool_call_tag, hermes_qwen.TOOL_CALL_OPENERS, "hermes", "qwen3_coder", "glm"),
    _calls(anthropic_xml.detect_function_calls, anthropic_xml.FUNCTION_CALLS_OPENERS,
           "anthropic_invoke", "anthropic_legacy", "olmo3"),
    _calls(anthropic_xml.detect_bare_invoke, anthropic_xml.BARE_INVOKE_OPENERS, "anthropic_invoke"),
    _calls(minimax.detect_function_param, minimax.FUNCTION_PARAM_OPENERS, "minicpm"),
    _calls(anthropic_xml.detect_tool_use_block, ("<tool_use>",), "tool_use_block"),
    _calls(generic_json.detect_glaive, ("<functioncall>",), "glaive"),
    _calls(tagged_json.detect_cwm, ("<tool: ",), "cwm"),
    _calls(hermes_qwen.detect_function_tag, ("<function=",), "function_json", "qwen3_coder"),
    Entry(reasoning.detect_framing, reasoning.FRAMING_OPENERS),
    _calls(anthropic_xml.detect_tool_name_tag, ("<",), "tool_name_tags"),
    _calls(mistral.detect_mistral, ("[TOOL_CALLS]",), "mistral", "mistral_legacy"),
    _calls(lfm2.detect_unused_tokens, ("[unused11]",), "pangu"),
    _calls(llama_pythonic.detect_pythonic, ("[",), "pythonic"),
    _calls(generic_json.detect_bare_json, ("[", "{"), "json", "g3_json", "llama_json"),
    _calls(generic_json.detect_fenced_json, ("`",), "json"),
    _calls(generic_json.detect_labelled_json, ("**Tool Call:**",), "json"),
    _calls(granite.detect_functools, ("functools",), "granite"),
    _calls(llama_pythonic.detect_python_line, (NAME_OPENER,), "granite_pythonic"),
)
FORMATS = frozenset().union(*(entry.formats for entry in ENTRIES))


def block_start_markup(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Markup only recognised at the very start of a text (reasoning labels of Granite, bare Harmony)."""
    return reasoning.detect_block_start(text, start, context)


_tables: dict[tuple[str, tuple[str, ...]], DetectorTable] = {}


def detector_table(tools: ToolIndex, mode: str) -> DetectorTable:
    """The table for a mode ("auto" or one format) and the request's tool names (cached)."""
    names = tools.names
    table = _tables.get((mode, names))
    if table is None:
        if mode != "auto" and mode not in FORMATS:
            raise ValueError(f"unknown tool-call format {mode!r}; expected auto, off or one of {sorted(FORMATS)}")
        entries = [entry for entry in ENTRIES if mode == "auto" or not entry.formats or mode in entry.formats]
        table = DetectorTable(entries, names, mode)
        if len(_tables) > 256:
            _tables.clear()
        _tables[(mode, names)] = table
    return table
