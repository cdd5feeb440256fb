"""The hard cases of docs/TOOLCALL_FORMATS.md, written out by hand."""
from __future__ import annotations

import json

from toolcall_corpus import Case

LS = ("shell", {"command": "ls -la"})
PARIS = ("get_weather", {"city": "Paris"})


def _case(case_id: str, format_name: str, text: str, calls: list, prose: tuple[str, ...] = (),
          reasoning: tuple[str, ...] = ()) -> Case:
    return Case(f"hard-{case_id}", format_name, text, tuple(calls), prose, reasoning=reasoning)


HARD_CASES = [
    _case("missing-closing-tag", "hermes", '<tool_call>\n{"name": "shell", "arguments": {"command": "ls -la"}}\n', [LS]),
    _case("cut-mid-json", "hermes", '<tool_call>\n{"name": "shell", "arguments": {"command": "ls -la"', [LS]),
    _case("cut-mid-json-g3", "g3_json", 'Running:\n{"tool": "shell", "args": {"command": "ls -la"', [LS], ("Running:\n",)),
    _case("trailing-prose-in-tag", "hermes",
          '<tool_call>{"name": "shell", "arguments": {"command": "ls -la"}} I hope this helps</tool_call>', [LS]),
    _case("trailing-prose-in-arguments", "hermes",
          '<tool_call>{"name": "shell", "arguments": "{\\"command\\": \\"ls -la\\"} and then some"}</tool_call>', [LS]),
    _case("single-quotes-python-literals", "hermes",
          "<tool_call>{'name': 'get_weather', 'arguments': {'city': 'Paris', 'metric': True, 'days': None}}</tool_call>",
          [("get_weather", {"city": "Paris", "metric": True, "days": None})]),
    _case("trailing-comma", "hermes", '<tool_call>{"name": "shell", "arguments": {"command": "ls -la",},}</tool_call>', [LS]),
    _case("arguments-as-string", "hermes",
          "<tool_call>" + json.dumps({"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}) + "</tool_call>",
          [PARIS]),
    _case("arguments-twice-encoded", "hermes",
          "<tool_call>" + json.dumps({"name": "get_weather", "arguments": json.dumps(json.dumps({"city": "Paris"}))})
          + "</tool_call>", [PARIS]),
    _case("string-for-integer", "hermes",
          '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "days": "5", "metric": "false"}}</tool_call>',
          [("get_weather", {"city": "Paris", "days": 5, "metric": False})]),
    _case("parameters-key", "hermes", '<tool_call>{"name": "get_weather", "parameters": {"city": "Paris"}}</tool_call>', [PARIS]),
    _case("empty-arguments", "hermes", '<tool_call>{"name": "todo_read", "arguments": {}}</tool_call>', [("todo_read", {})]),
    _case("no-arguments-key", "hermes", '<tool_call>{"name": "todo_read"}</tool_call>', [("todo_read", {})]),
    _case("glm-empty-call", "glm", "<tool_call>todo_read</tool_call>", [("todo_read", {})]),
    _case("closing-tag-in-json-value", "hermes",
          '<tool_call>{"name": "shell", "arguments": {"command": "echo \'</tool_call>\'"}}</tool_call>',
          [("shell", {"command": "echo '</tool_call>'"})]),
    _case("closing-parameter-in-qwen-value", "qwen3_coder",
          "<tool_call>\n<function=shell>\n<parameter=command>\necho '</parameter>' > x\n</parameter>\n</function>\n</tool_call>",
          [("shell", {"command": "echo '</parameter>' > x"})]),
    _case("think-alone", "negative",
          '<think>Maybe <tool_call>{"name": "shell", "arguments": {"command": "rm -rf /"}}</tool_call>? No.</think>All good.',
          [], ("All good.",), ('Maybe <tool_call>{"name": "shell", "arguments": {"command": "rm -rf /"}}</tool_call>? No.',)),
    _case("think-duplicated-outside", "hermes",
          '<think>I will call <tool_call>{"name": "shell", "arguments": {"command": "ls -la"}}</tool_call></think>\n'
          '<tool_call>{"name": "shell", "arguments": {"command": "ls -la"}}</tool_call>',
          [LS], (), ('I will call <tool_call>{"name": "shell", "arguments": {"command": "ls -la"}}</tool_call>',)),
    _case("reasoning-again-after-a-call", "hermes",
          '<think>First the listing.</think><tool_call>{"name": "shell", "arguments": {"command": "ls -la"}}</tool_call>'
          '<think>Then the weather.</think><tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
          [LS, PARIS], (), ("First the listing.", "Then the weather.")),
    _case("unclosed-think-then-call", "hermes",
          '<think>Let me call {"tool": "shell"}\n<tool_call>{"name": "shell", "arguments": {"command": "ls -la"}}</tool_call>',
          [LS], (), ('Let me call {"tool": "shell"}\n',)),
    _case("bare-think-close-then-call", "hermes",
          'The listing first.</think>\n\n<tool_call>{"name": "shell", "arguments": {"command": "ls -la"}}</tool_call>',
          [LS], (), ("The listing first.",)),
    _case("call-quoted-before-bare-think-close", "negative",
          'Maybe <tool_call>{"name": "shell", "arguments": {"command": "rm -rf /"}}</tool_call>? No.</think>All good.',
          [], ("All good.",), ('Maybe <tool_call>{"name": "shell", "arguments": {"command": "rm -rf /"}}</tool_call>? No.',)),
    _case("several-calls-adjacent", "hermes",
          '<tool_call>{"name": "shell", "arguments": {"command": "ls -la"}}</tool_call>'
          '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>', [LS, PARIS]),
    _case("functions-prefix", "hermes", '<tool_call>{"name": "functions.shell", "arguments": {"command": "ls -la"}}</tool_call>', [LS]),
    _case("name-case", "hermes", '<tool_call>{"name": "Shell", "arguments": {"command": "ls -la"}}</tool_call>', [LS]),
    _case("openai-shape", "hermes",
          '<tool_call>{"type": "function", "function": {"name": "shell", "arguments": "{\\"command\\": \\"ls -la\\"}"}}</tool_call>',
          [LS]),
    _case("granite-31-array-in-tool-call", "hermes",
          '<tool_call>[{"name": "shell", "arguments": {"command": "ls -la"}}, {"name": "get_weather", "arguments": {"city": "Paris"}}]</tool_call>',
          [LS, PARIS]),
    _case("qwen-without-wrapper", "qwen3_coder",
          "<function=shell>\n<parameter=command>\nls -la\n</parameter>\n</function>", [LS]),
    _case("qwen-cut-off", "qwen3_coder",
          "<tool_call>\n<function=write_file>\n<parameter=file_path>\na.py\n</parameter>\n<parameter=content>\nprint(1)",
          [("write_file", {"file_path": "a.py", "content": "print(1)"})]),
    _case("xml-null-and-number", "anthropic_invoke",
          '<function_calls>\n<invoke name="search">\n<parameter name="query">x</parameter>\n'
          '<parameter name="threshold">null</parameter>\n<parameter name="limit">3</parameter>\n</invoke>\n</function_calls>',
          [("search", {"query": "x", "threshold": None, "limit": 3})]),
    _case("xml-anyof-number", "minimax",
          '<minimax:tool_call>\n<invoke name="search">\n<parameter name="query">x</parameter>\n'
          '<parameter name="threshold">0.5</parameter>\n</invoke>\n</minimax:tool_call>',
          [("search", {"query": "x", "threshold": 0.5})]),
    _case("unknown-property-kept", "hermes",
          '<tool_call>{"name": "shell", "arguments": {"command": "ls -la", "timeout": 5}}</tool_call>',
          [("shell", {"command": "ls -la", "timeout": 5})]),
    _case("mistral-call-id", "mistral", '[TOOL_CALLS]shell[CALL_ID]a1b2c3d4e[ARGS]{"command": "ls -la"}', [LS]),
    _case("mistral-two-calls", "mistral",
          '[TOOL_CALLS]shell[ARGS]{"command": "ls -la"}[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', [LS, PARIS]),
    _case("llama-semicolon", "llama_json",
          '<|python_tag|>{"name": "shell", "parameters": {"command": "ls -la"}}; {"name": "get_weather", "parameters": {"city": "Paris"}}',
          [LS, PARIS]),
    _case("kimi-two-in-section", "kimi",
          "<|tool_calls_section_begin|><|tool_call_begin|>functions.shell:0<|tool_call_argument_begin|>"
          '{"command": "ls -la"}<|tool_call_end|><|tool_call_begin|>functions.get_weather:1'
          '<|tool_call_argument_begin|>{"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>', [LS, PARIS]),
    _case("deepseek-two-in-block", "deepseek_v31",
          '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>shell<｜tool▁sep｜>{"command": "ls -la"}<｜tool▁call▁end｜>'
          '<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>', [LS, PARIS]),
    _case("harmony-recipient-first", "harmony",
          '<|start|>assistant to=functions.shell<|channel|>commentary json<|message|>{"command": "ls -la"}<|call|>', [LS]),
    _case("harmony-after-analysis", "harmony",
          "<|channel|>analysis<|message|>Need to list files.<|end|>"
          '<|start|>assistant<|channel|>commentary to=functions.shell <|constrain|>json<|message|>{"command": "ls -la"}<|call|>',
          [LS], (), ("Need to list files.",)),
    _case("pythonic-two-calls", "pythonic", "[shell(command='ls -la'), get_weather(city='Paris')]", [LS, PARIS]),
    _case("fenced-single-object", "json",
          'Here:\n```json\n{"name": "shell", "arguments": {"command": "ls -la"}}\n```', [LS], ("Here:\n",)),
    _case("tool-name-tags-cline", "tool_name_tags",
          "I'll read it.\n<read_file>\n<file_path>src/main.ts</file_path>\n</read_file>",
          [("read_file", {"file_path": "src/main.ts"})], ("I'll read it.\n",)),
    _case("tool-name-tags-html-in-value", "tool_name_tags",
          "<write_file>\n<file_path>index.html</file_path>\n<content>\n<div><p>Hi</p></div>\n</content>\n</write_file>",
          [("write_file", {"file_path": "index.html", "content": "<div><p>Hi</p></div>"})]),
    _case("g3-two-lines", "g3_json",
          '{"tool": "shell", "args": {"command": "ls -la"}}\n{"tool": "get_weather", "args": {"city": "Paris"}}', [LS, PARIS]),
    _case("dsml-json-value", "deepseek_dsml",
          '<｜DSML｜function_calls>\n<｜DSML｜invoke name="code_search">\n<｜DSML｜parameter name="searches" string="false">'
          '[{"name": "a", "query": "b"}]</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>',
          [("code_search", {"searches": [{"name": "a", "query": "b"}]})]),
    _case("unicode-everywhere", "hermes",
          "Привет! 你好 👋\n<tool_call>{\"name\": \"final_output\", \"arguments\": {\"summary\": \"完成 ✓ — naïve\"}}</tool_call>",
          [("final_output", {"summary": "完成 ✓ — naïve"})], ("Привет! 你好 👋\n",)),
]
