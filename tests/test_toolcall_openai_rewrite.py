"""Text tool calls in OpenAI chat completions: answers and chunk streams become tool_calls, the same way."""
from __future__ import annotations

import json

import pytest

from toolcall_corpus import Case, load_cases
from toolcall_corpus.tools import ALL_TOOLS
from toolcall_stream_support import random_chunks
from loadbalancer.toolcalls.openai_rewrite import ChatChunkRewriter, rewrite_chat_completion

HERMES = '<tool_call>\n{"name": "shell", "arguments": {"command": "ls -la"}}\n</tool_call>'
QWEN = "<tool_call>\n<function=read_file>\n<parameter=file_path>\nsrc/a.py\n</parameter>\n</function>\n</tool_call>"
CASES = load_cases()[::5]


def completion(content: str | None, **message: object) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}


def chunks_of(pieces: list[str], finish_reason: str = "stop") -> list[dict]:
    envelope = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    deltas = [{"role": "assistant", "content": ""}] + [{"content": piece} for piece in pieces]
    chunks = [{**envelope, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    return chunks + [{**envelope, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]}]


def assemble(chunks: list[dict]) -> tuple[str, list[tuple[str, dict]], str | None, str]:
    """(content, calls, finish_reason, reasoning) the way the openai SDK accumulates a stream."""
    text, reasoning, finish = [], [], None
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            for call in delta.get("tool_calls") or ():
                entry = calls.setdefault(call["index"], {"name": "", "arguments": ""})
                entry["name"] += call.get("function", {}).get("name") or ""
                entry["arguments"] += call.get("function", {}).get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    parsed = [(entry["name"], json.loads(entry["arguments"])) for _, entry in sorted(calls.items())]
    return "".join(text), parsed, finish, "".join(reasoning)


def stream(pieces: list[str], tools: list[dict] = ALL_TOOLS, **options: object) -> tuple[list[dict], list[dict], ChatChunkRewriter]:
    rewriter = ChatChunkRewriter(tools, **options)
    upstream = chunks_of(pieces)
    sent = [item for chunk in upstream for item in rewriter.feed(chunk)] + rewriter.finish()
    return upstream, sent, rewriter


@pytest.mark.parametrize("markup, call", [(HERMES, ("shell", {"command": "ls -la"})),
                                          (QWEN, ("read_file", {"file_path": "src/a.py"}))])
def test_a_text_call_in_an_answer_becomes_tool_calls(markup: str, call: tuple[str, dict]) -> None:
    data = completion("Let me look.\n" + markup)
    rewritten, stats = rewrite_chat_completion(data, ALL_TOOLS)
    choice = rewritten["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me look.\n"
    [entry] = choice["message"]["tool_calls"]
    assert entry["type"] == "function" and entry["id"].startswith("call_")
    assert (entry["function"]["name"], json.loads(entry["function"]["arguments"])) == call
    assert isinstance(entry["function"]["arguments"], str)
    assert stats.parsed == 1 and rewritten["usage"] == data["usage"]


def test_an_answer_with_nothing_to_rewrite_is_the_same_object() -> None:
    for data in (completion("Plain prose with a < b and [links](x)."), completion(None, tool_calls=[]),
                 completion(HERMES)):
        tools = [] if data["choices"][0]["message"]["content"] == HERMES else ALL_TOOLS
        assert rewrite_chat_completion(data, tools)[0] is data
    data = completion(HERMES)
    assert rewrite_chat_completion(data, ALL_TOOLS, mode="off")[0] is data


def test_calls_are_appended_after_native_tool_calls() -> None:
    native = {"id": "call_native", "type": "function", "function": {"name": "todo_read", "arguments": "{}"}}
    rewritten, _ = rewrite_chat_completion(completion(HERMES, tool_calls=[native]), ALL_TOOLS)
    names = [entry["function"]["name"] for entry in rewritten["choices"][0]["message"]["tool_calls"]]
    assert names == ["todo_read", "shell"]


def test_reasoning_goes_to_reasoning_content_only_when_asked() -> None:
    data = completion("<think>Listing is enough.</think>\n" + HERMES)
    asked, _ = rewrite_chat_completion(data, ALL_TOOLS, thinking=True)
    assert asked["choices"][0]["message"]["reasoning_content"] == "Listing is enough."
    assert asked["choices"][0]["message"]["content"] is None
    silent, _ = rewrite_chat_completion(data, ALL_TOOLS)
    assert "reasoning_content" not in silent["choices"][0]["message"]


def test_a_stream_with_nothing_to_rewrite_passes_every_chunk_as_it_came() -> None:
    upstream, sent, rewriter = stream(["Just ", "some text, ", "nothing else."])
    assert len(sent) == len(upstream)
    assert all(a is b for a, b in zip(sent, upstream)) and rewriter.stats.parsed == 0


@pytest.mark.parametrize("pieces", [["Compare a <", " b and [x", "](y) {z}."], ["Line one.\n", "```\n<tool_call>", "\n```\n"],
                                    ["Hello", "\n\n"]])
def test_text_the_parser_held_and_let_go_keeps_its_chunks(pieces: list[str]) -> None:
    upstream, sent, _ = stream(pieces)
    assert len(sent) == len(upstream) and all(a is b for a, b in zip(sent, upstream))


def test_a_first_chunk_with_role_and_content_keeps_its_role() -> None:
    rewriter = ChatChunkRewriter(ALL_TOOLS)
    first = {"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Go.\n<tool_"}, "finish_reason": None}]}
    rest = {"id": "c", "choices": [{"index": 0, "delta": {"content": HERMES[6:]}, "finish_reason": None}]}
    last = {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    sent = rewriter.feed(first) + rewriter.feed(rest) + rewriter.feed(last)
    assert any(choice["delta"].get("role") == "assistant" for chunk in sent for choice in chunk["choices"])
    assert assemble(sent)[:3] == ("Go.\n", [("shell", {"command": "ls -la"})], "tool_calls")


def test_framing_leaves_a_stream_as_it_leaves_an_answer() -> None:
    text = "<|START_RESPONSE|>It is sunny.<|END_RESPONSE|>"
    answer, _ = rewrite_chat_completion(completion(text), ALL_TOOLS)
    assert answer["choices"][0]["message"]["content"] == "It is sunny."
    _, sent, _ = stream(random_chunks(text, 4, 6))
    assert assemble(sent)[0] == "It is sunny."


def test_a_text_call_in_a_stream_becomes_one_tool_calls_delta() -> None:
    text = "Let me look.\n" + HERMES
    _, sent, rewriter = stream(random_chunks(text, 3, 5))
    content, calls, finish, _ = assemble(sent)
    assert (content, calls, finish) == ("Let me look.\n", [("shell", {"command": "ls -la"})], "tool_calls")
    deltas = [call for chunk in sent for choice in chunk["choices"] for call in choice["delta"].get("tool_calls") or ()]
    assert len(deltas) == 1 and deltas[0]["index"] == 0 and rewriter.stats.parsed == 1


def test_a_stream_cut_before_its_finish_reason_is_flushed_by_finish() -> None:
    rewriter = ChatChunkRewriter(ALL_TOOLS)
    sent = [item for chunk in chunks_of(["Go.\n", HERMES])[:-1] for item in rewriter.feed(chunk)] + rewriter.finish()
    assert assemble(sent)[1] == [("shell", {"command": "ls -la"})]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_stream_and_answer_give_the_same_calls_and_text(case: Case) -> None:
    tools = list(case.tools)
    answer, _ = rewrite_chat_completion(completion(case.text), tools)
    message = answer["choices"][0]["message"]
    expected_calls = [(entry["function"]["name"], json.loads(entry["function"]["arguments"]))
                      for entry in message.get("tool_calls") or ()]
    assert expected_calls == [(name, arguments) for name, arguments in case.calls]
    for seed in (1, 2):
        _, sent, _ = stream(random_chunks(case.text, seed, 7), tools)
        content, calls, finish, _ = assemble(sent)
        assert (content.strip(), calls) == ((message["content"] or "").strip(), expected_calls)
        assert finish == answer["choices"][0]["finish_reason"]
