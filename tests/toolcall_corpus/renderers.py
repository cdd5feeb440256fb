"""One renderer per catalogued format: how a model writes a call (name, input) as text."""
from __future__ import annotations

import json
from collections.abc import Callable

NS = "antml" + ":"
Renderer = Callable[[str, dict, int], str]


def _string(value: object) -> str:
    """How XML formats write a value: strings raw, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def hermes(name: str, args: dict, variant: int) -> str:
    return f"<tool_call>\n{_json({'name': name, 'arguments': args})}\n</tool_call>"


def qwen3_coder(name: str, args: dict, variant: int) -> str:
    parameters = "".join(f"<parameter={key}>\n{_string(value)}\n</parameter>\n" for key, value in args.items())
    tag = "seed:tool_call" if variant % 5 == 4 else "tool_call"
    return f"<{tag}>\n<function={name}>\n{parameters}</function>\n</{tag}>"


def glm(name: str, args: dict, variant: int) -> str:
    pairs = [f"<arg_key>{key}</arg_key>{'' if variant % 2 else chr(10)}<arg_value>{_string(value)}</arg_value>"
             for key, value in args.items()]
    if variant % 2:  # GLM-4.7 writes no newlines
        return f"<tool_call>{name}{''.join(pairs)}</tool_call>"
    return f"<tool_call>{name}\n" + "".join(pair + "\n" for pair in pairs) + "</tool_call>"


def mistral(name: str, args: dict, variant: int) -> str:
    return f"[TOOL_CALLS]{name}{'' if variant % 3 == 2 else '[ARGS]'}{_json(args)}"


def mistral_legacy(name: str, args: dict, variant: int) -> str:
    return f"[TOOL_CALLS] {_json([{'name': name, 'arguments': args}])}"


def llama_json(name: str, args: dict, variant: int) -> str:
    body = _json({"name": name, "parameters": args})
    return body if variant % 3 == 1 else f"<|python_tag|>{body}"


def pythonic(name: str, args: dict, variant: int) -> str:
    body = "[" + name + "(" + ", ".join(f"{key}={value!r}" for key, value in args.items()) + ")]"
    return f"<|python_start|>{body}<|python_end|>" if variant % 3 == 2 else body


def deepseek_v3(name: str, args: dict, variant: int) -> str:
    return (f"<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>{name}\n```json\n{_json(args)}\n```"
            "<｜tool▁call▁end｜><｜tool▁calls▁end｜>")


def deepseek_v31(name: str, args: dict, variant: int) -> str:
    text = (f"<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>{name}<｜tool▁sep｜>{_json(args)}"
            "<｜tool▁call▁end｜><｜tool▁calls▁end｜>")
    return text.replace("｜", "|").replace("▁", "_") if variant % 4 == 3 else text  # ASCII look-alikes


def deepseek_dsml(name: str, args: dict, variant: int) -> str:
    parameters = "".join(
        f'<｜DSML｜parameter name="{key}" string="{"true" if isinstance(value, str) else "false"}">'
        f"{_string(value)}</｜DSML｜parameter>\n" for key, value in args.items())
    return (f'<｜DSML｜function_calls>\n<｜DSML｜invoke name="{name}">\n{parameters}'
            "</｜DSML｜invoke>\n</｜DSML｜function_calls>")


def kimi(name: str, args: dict, variant: int) -> str:
    return (f"<|tool_calls_section_begin|><|tool_call_begin|>functions.{name}:{variant % 2}"
            f"<|tool_call_argument_begin|>{_json(args)}<|tool_call_end|><|tool_calls_section_end|>")


def _invoke(name: str, args: dict, prefix: str) -> str:
    parameters = "".join(f'<{prefix}parameter name="{key}">{_string(value)}</{prefix}parameter>\n'
                         for key, value in args.items())
    return f'<{prefix}invoke name="{name}">\n{parameters}</{prefix}invoke>\n'


def minimax(name: str, args: dict, variant: int) -> str:
    return f"<minimax:tool_call>\n{_invoke(name, args, '')}</minimax:tool_call>"


def anthropic_invoke(name: str, args: dict, variant: int) -> str:
    prefix = NS if variant % 2 else ""
    return f"<{prefix}function_calls>\n{_invoke(name, args, prefix)}</{prefix}function_calls>"


def anthropic_legacy(name: str, args: dict, variant: int) -> str:
    parameters = "".join(f"<{key}>{_string(value)}</{key}>\n" for key, value in args.items())
    return (f"<function_calls>\n<invoke>\n<tool_name>{name}</tool_name>\n<parameters>\n{parameters}"
            "</parameters>\n</invoke>\n</function_calls>")


def harmony(name: str, args: dict, variant: int) -> str:
    return (f"<|start|>assistant<|channel|>commentary to=functions.{name} <|constrain|>json"
            f"<|message|>{_json(args)}<|call|>")


def tool_calls_array(name: str, args: dict, variant: int) -> str:
    if variant % 2:  # MiniMax-M1: one object per line
        return f"<tool_calls>\n{_json({'name': name, 'arguments': args})}\n</tool_calls>"
    return f"<tool_calls>{_json([{'name': name, 'arguments': args}])}</tool_calls>"


def tool_name_tags(name: str, args: dict, variant: int) -> str:
    parameters = "".join(f"<{key}>{_string(value)}</{key}>\n" for key, value in args.items())
    return f"<{name}>\n{parameters}</{name}>"


def tool_use_block(name: str, args: dict, variant: int) -> str:
    return f"<tool_use>\n  <name>{name}</name>\n  <arguments>{_json(args)}</arguments>\n</tool_use>"


def function_json(name: str, args: dict, variant: int) -> str:
    return f"<function={name}>{_json(args)}</function>"


def fenced_json(name: str, args: dict, variant: int) -> str:
    body = _json([{"name": name, "arguments": args}])
    return body if variant % 3 == 1 else f"```json\n{body}\n```"


def granite(name: str, args: dict, variant: int) -> str:
    prefix = "functools" if variant % 3 == 2 else "<|tool_call|>"
    return prefix + _json([{"name": name, "arguments": args}])


def internlm(name: str, args: dict, variant: int) -> str:
    return f"<|action_start|><|plugin|>\n{_json({'name': name, 'parameters': args})}<|action_end|>"


def _gemma_value(value: object, quote: str) -> str:
    if isinstance(value, str):
        return f"{quote}{value}{quote}"
    return _json(value)


def gemma(name: str, args: dict, variant: int) -> str:
    quote = "<escape>" if variant % 3 == 2 else '<|"|>'
    body = "{" + ",".join(f"{key}:{_gemma_value(value, quote)}" for key, value in args.items()) + "}"
    if variant % 3 == 2:
        return f"<start_function_call>call:{name}{body}<end_function_call>"
    return f"<|tool_call>call:{name}{body}<tool_call|>"


def glaive(name: str, args: dict, variant: int) -> str:
    return "<functioncall> {" + f'"name": {_json(name)}, "arguments": \'{_json(args)}\'' + "}"


def g3_json(name: str, args: dict, variant: int) -> str:
    return _json({"tool": name, "args": args})


RENDERERS: dict[str, Renderer] = {
    "hermes": hermes, "qwen3_coder": qwen3_coder, "glm": glm, "mistral": mistral,
    "mistral_legacy": mistral_legacy, "llama_json": llama_json, "pythonic": pythonic,
    "deepseek_v3": deepseek_v3, "deepseek_v31": deepseek_v31, "deepseek_dsml": deepseek_dsml,
    "kimi": kimi, "minimax": minimax, "anthropic_invoke": anthropic_invoke,
    "anthropic_legacy": anthropic_legacy, "harmony": harmony, "tool_calls_array": tool_calls_array,
    "tool_name_tags": tool_name_tags, "tool_use_block": tool_use_block, "function_json": function_json,
    "json": fenced_json, "granite": granite, "internlm": internlm, "gemma": gemma, "glaive": glaive,
    "g3_json": g3_json,
}
