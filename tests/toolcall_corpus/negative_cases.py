"""Texts that must stay text: prose about tools, code samples, unknown tools, requests without tools."""
from __future__ import annotations

from toolcall_corpus import Case


def _negative(case_id: str, text: str, tools: tuple[dict, ...] | None = None) -> Case:
    prose = (text,) if text.strip() or tools == () else ()
    if tools is None:
        return Case(f"negative-{case_id}", "negative", text, (), prose)
    return Case(f"negative-{case_id}", "negative", text, (), prose, tools)


def _reasoning_only(case_id: str, text: str, reasoning: str) -> Case:
    return Case(f"negative-{case_id}", "negative", text, (), (), reasoning=(reasoning,))


HERMES_SHELL = '<tool_call>{"name": "shell", "arguments": {"command": "ls -la"}}</tool_call>'

NEGATIVE_CASES = [
    _negative("prose-mentions-tools", "You can use the read_file tool, or write <read_file> tags, to read files."),
    _negative("prose-mentions-tool-call-tag", "Models emit <tool_call> tags when they want to act; shell(command='ls') runs."),
    _negative("fenced-config-json", 'Config:\n```json\n{"name": "my-app", "version": "1.0.0"}\n```\nThat is all.'),
    _negative("fenced-python-list", "```python\n[read_file(file_path='x') for x in files]\n[shell(command=c) for c in cmds]\n```"),
    _negative("fenced-g3-sample-in-python", '```python\nline = {"tool": "shell"}\n{"tool": "shell", "args": {"command": "ls"}}\n```'),
    _negative("json-status-line", '{"status": "ok", "count": 3}\nEverything passed.'),
    _negative("json-name-not-a-tool", '{"name": "Alice", "age": 30}'),
    _negative("array-line", '[1, 2, 3]\n[{"id": 1}]\n[{"name": "Bob"}]'),
    _negative("markdown-link", "[docs](https://example.com) and [shell](#shell) are linked."),
    _negative("html-and-comparisons", "<div>hello</div> a < b > c, x<y, <br/> and <p>"),
    _negative("braces-in-prose", "Use {x} or {'a': 1} in templates; `{code}` too."),
    _negative("unknown-tool-hermes", '<tool_call>{"name": "delete_everything", "arguments": {}}</tool_call>'),
    _negative("unknown-tool-mistral", '[TOOL_CALLS]launch_rockets[ARGS]{"count": 3}'),
    _negative("unknown-tool-tag", "<launch_rockets>\n<count>3</count>\n</launch_rockets>"),
    _negative("unknown-tool-pythonic", "[launch_rockets(count=3)]"),
    _reasoning_only("harmony-analysis-only", "<|channel|>analysis<|message|>Thinking about shell.<|end|>",
                    "Thinking about shell."),
    _negative("functools-prose", "functools is a module; functools.partial(f, 1) and functools[0] are fine."),
    _negative("list-comprehension-line", "[f(x) for x in range(3)]"),
    _reasoning_only("think-only-call", '<think><tool_call>{"name": "shell", "arguments": {"command": "ls"}}</tool_call></think>',
                    '<tool_call>{"name": "shell", "arguments": {"command": "ls"}}</tool_call>'),
    _negative("whitespace-only", "  \n\n  "),
    _negative("no-tools-in-request", HERMES_SHELL, tools=()),
    _negative("server-tool-only", HERMES_SHELL, tools=({"type": "web_search_20250305", "name": "shell"},)),
    _negative("xml-code-sample", "Use `<div>` like so:\n<div class=\"a\">\n<span>x</span>\n</div>"),
    _negative("fence-no-language", "```\n{\"key\": \"value\"}\n```"),
    _negative("less-than-at-end", "if a <"),
    _negative("bracket-at-end", "see ["),
    _negative("inline-code-markers", "Qwen writes `<tool_call>` then JSON, DeepSeek ends reasoning with `</think>`, "
              "and `<think>` opens it: `<tool_call>{\"name\": \"shell\", \"arguments\": {\"command\": \"ls\"}}</tool_call>`."),
    _negative("think-tag-mentioned-mid-answer", "Sure. Reasoning models open with <think> and the parser hides it."),
]
