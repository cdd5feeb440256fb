"""The text tool-call detectors, one module per model family, and the table the parser tries them in.

A detector looks at one position of the text and answers a Detection (a block of calls ending at
.end), None (not this format) or NEED_MORE (the text so far could still become a call). An answer
other than NEED_MORE never changes when more text arrives, which is what makes the streaming
parser equal the complete one.
"""
from __future__ import annotations

from collections.abc import Callable

from loadbalancer.toolcalls.detectors.anthropic_xml import detect_invoke_block, detect_tool_name_tag, detect_tool_use_block
from loadbalancer.toolcalls.detectors.deepseek import detect_deepseek, detect_dsml
from loadbalancer.toolcalls.detectors.gemma import detect_gemma
from loadbalancer.toolcalls.detectors.generic_json import (
    detect_bare_json,
    detect_fenced_json,
    detect_glaive,
    detect_prefixed_json,
    detect_tool_calls_array,
)
from loadbalancer.toolcalls.detectors.harmony import detect_harmony
from loadbalancer.toolcalls.detectors.hermes_qwen import detect_function_tag, detect_tool_call_tag
from loadbalancer.toolcalls.detectors.kimi import detect_kimi
from loadbalancer.toolcalls.detectors.llama_pythonic import detect_pythonic
from loadbalancer.toolcalls.detectors.mistral import detect_mistral
from loadbalancer.toolcalls.scan import DetectorResult, ScanContext

Detector = Callable[[str, int, ScanContext], DetectorResult]

# Most specific markers first; each entry: the detector and the formats it can report.
DETECTORS_BY_CHAR: dict[str, tuple[tuple[Detector, frozenset[str]], ...]] = {
    "<": (
        (detect_dsml, frozenset({"deepseek_dsml"})),
        (detect_deepseek, frozenset({"deepseek_v3", "deepseek_v31"})),
        (detect_kimi, frozenset({"kimi"})),
        (detect_harmony, frozenset({"harmony"})),
        (detect_gemma, frozenset({"gemma"})),
        (detect_prefixed_json, frozenset({"granite", "internlm", "llama_json"})),
        (detect_pythonic, frozenset({"pythonic"})),
        (detect_tool_call_tag, frozenset({"hermes", "qwen3_coder", "glm"})),
        (detect_invoke_block, frozenset({"minimax", "anthropic_invoke", "anthropic_legacy"})),
        (detect_tool_calls_array, frozenset({"tool_calls_array"})),
        (detect_tool_use_block, frozenset({"tool_use_block"})),
        (detect_glaive, frozenset({"glaive"})),
        (detect_function_tag, frozenset({"function_json", "qwen3_coder"})),
        (detect_tool_name_tag, frozenset({"tool_name_tags"})),
    ),
    "[": (
        (detect_mistral, frozenset({"mistral", "mistral_legacy"})),
        (detect_pythonic, frozenset({"pythonic"})),
        (detect_bare_json, frozenset({"json", "g3_json", "llama_json"})),
    ),
    "{": ((detect_bare_json, frozenset({"json", "g3_json", "llama_json"})),),
    "`": ((detect_fenced_json, frozenset({"json"})),),
    "f": ((detect_prefixed_json, frozenset({"granite"})),),
}
FORMATS = frozenset().union(*(labels for table in DETECTORS_BY_CHAR.values() for _, labels in table))
