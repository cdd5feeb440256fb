"""Special tokens, tools and the case builder shared by the family case modules."""
from __future__ import annotations

# ---- special tokens that are awkward to type -------------------------------------------------
# DeepSeek V3 / V3.1: fullwidth bar U+FF5C and lower one eighth block U+2581
DS_CALLS_BEGIN = "<\uff5ctool\u2581calls\u2581begin\uff5c>"
DS_CALLS_END = "<\uff5ctool\u2581calls\u2581end\uff5c>"
DS_CALL_BEGIN = "<\uff5ctool\u2581call\u2581begin\uff5c>"
DS_CALL_END = "<\uff5ctool\u2581call\u2581end\uff5c>"
DS_SEP = "<\uff5ctool\u2581sep\uff5c>"
# DeepSeek V3.2 / V4 DSML
DSML = "\uff5cDSML\uff5c"
# Step-3: fullwidth bars but ASCII underscores
ST_CALLS_BEGIN = "<\uff5ctool_calls_begin\uff5c>"
ST_CALLS_END = "<\uff5ctool_calls_end\uff5c>"
ST_CALL_BEGIN = "<\uff5ctool_call_begin\uff5c>"
ST_CALL_END = "<\uff5ctool_call_end\uff5c>"
ST_SEP = "<\uff5ctool_sep\uff5c>"
# GigaChat 3.5 GCML
GCML = "\uff5cGCML\uff5c"
# MiniMax M3 namespace token
MM3 = "]<]minimax[>["
# Kimi K3 XTML
KO, KC, KS = "<|open|>", "<|close|>", "<|sep|>"
# Gemma 4 string delimiter
GQ = '<|"|>'
# PLaMo 3
PL = {k: f"<|plamo:{k}:plamo|>" for k in (
    "begin_tool_requests", "end_tool_requests", "begin_tool_request", "end_tool_request",
    "begin_tool_name", "end_tool_name", "begin_tool_arguments", "end_tool_arguments")}

# ---- request tools for cases that need a special schema --------------------------------------
NICKNAME_TOOLS = [{
    "name": "set_nickname", "description": "Set or clear the user's nickname.",
    "input_schema": {"type": "object",
                     "properties": {"nickname": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
                     "required": ["nickname"]}}]
RANGE_TOOLS = [{
    "name": "copy_lines", "description": "Copy a line range.",
    "input_schema": {"type": "object",
                     "properties": {"from": {"type": "integer"}, "to": {"type": "integer"},
                                    "file_path": {"type": "string"}},
                     "required": ["from", "to", "file_path"]}}]
TODO_LIST_TOOLS = [{
    "name": "plan_update", "description": "Replace the plan.",
    "input_schema": {"type": "object",
                     "properties": {"steps": {"type": "array", "items": {"type": "object"}}},
                     "required": ["steps"]}}]


def C(case_id, family, text, calls, prose=(), tools=None, thinking=None, note=None):
    case = {"id": case_id, "family": family, "text": text,
            "calls": [list(call) for call in calls], "prose": list(prose)}
    if tools is not None:
        case["tools"] = tools
    if thinking is not None:
        case["thinking"] = thinking
    if note:
        case["note"] = note
    return case
