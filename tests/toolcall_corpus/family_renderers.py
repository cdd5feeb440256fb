"""Renderers for the families beyond the first catalogue: how each writes a call (name, input) as text."""
from __future__ import annotations

import json

from toolcall_corpus.renderers import Renderer


def _string(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _python_call(name: str, args: dict) -> str:
    return name + "(" + ", ".join(f"{key}={value!r}" for key, value in args.items()) + ")"


def lfm2(name: str, args: dict, variant: int) -> str:
    space = " " if variant % 3 == 1 else ""
    return f"<|tool_call_start|>{space}[{_python_call(name, args)}]<|tool_call_end|>"


def pangu(name: str, args: dict, variant: int) -> str:
    body = _json([{"name": name, "arguments": args}])
    return f"[unused11]{body}[unused12]" if variant % 2 else f"<|tool_call_start|>{body}<|tool_call_end|>"


def granite_pythonic(name: str, args: dict, variant: int) -> str:
    return _python_call(name, args)


def olmo3(name: str, args: dict, variant: int) -> str:
    line = _python_call(name, args).replace("True", "true") if variant % 2 else _python_call(name, args)
    return f"<function_calls>\n{line}\n</function_calls>" if variant % 3 else f"<function_calls>{line}</function_calls>"


def cohere(name: str, args: dict, variant: int) -> str:
    item = _json({"tool_call_id": str(variant), "tool_name": name, "parameters": args})
    return f"<|START_ACTION|>[\n    {item}\n]<|END_ACTION|>"


def gigachat(name: str, args: dict, variant: int) -> str:
    body = _json({"name": name, "arguments": args})
    return f"<|function_call|>{body}" if variant % 2 else f"<|message_sep|>\n\nfunction call<|role_sep|>\n{body}"


def kimi_k3(name: str, args: dict, variant: int) -> str:
    def argument(key: str, value: object) -> str:
        kind = "string" if isinstance(value, str) else type(value).__name__
        return f'<|open|>argument key="{key}" type="{kind}"<|sep|>{_string(value)}<|close|>argument<|sep|>'
    arguments = "".join(argument(key, value) for key, value in args.items())
    return (f'<|open|>tools<|sep|><|open|>call tool="{name}" index="{variant}"<|sep|>{arguments}'
            "<|close|>call<|sep|><|close|>tools<|sep|>")


def hunyuan(name: str, args: dict, variant: int) -> str:
    suffix = ":6b1f0c2a" if variant % 2 else ""
    pairs = "".join(f"<arg_key{suffix}>{key}</arg_key{suffix}>\n<arg_value{suffix}>{_string(value)}</arg_value{suffix}>\n"
                    for key, value in args.items())
    return (f"<tool_calls{suffix}>\n<tool_call{suffix}>{name}<tool_sep{suffix}>\n{pairs}</tool_call{suffix}>\n"
            f"</tool_calls{suffix}>")


def k2_horizon(name: str, args: dict, variant: int) -> str:
    pairs = "".join(f"<ifm|arg_key>{key}</ifm|arg_key><ifm|arg_value>{_string(value)}</ifm|arg_value>"
                    for key, value in args.items())
    return f"<ifm|tool_calls><ifm|tool_call>{name}{pairs}</ifm|tool_call></ifm|tool_calls>"


def solar_open(name: str, args: dict, variant: int) -> str:
    pairs = "".join(f"<|tool_arg:start|>{key}<|tool_arg:value|>{_string(value)}<|tool_arg:end|>\n"
                    for key, value in args.items())
    return f"<|tool_call:start|>{name}\n{pairs}<|tool_call:end|>"


def plamo(name: str, args: dict, variant: int) -> str:
    def tag(kind: str) -> str:
        return f"<|plamo:{kind}:plamo|>"
    return (f"{tag('begin_tool_requests')}{tag('begin_tool_request')}{tag('begin_tool_name')}{name}"
            f"{tag('end_tool_name')}{tag('begin_tool_arguments')}{_json(args)}{tag('end_tool_arguments')}"
            f"{tag('end_tool_request')}{tag('end_tool_requests')}")


def apertus(name: str, args: dict, variant: int) -> str:
    return f"<|tools_prefix|>{_json([{name: args}])}<|tools_suffix|>"


def inkling(name: str, args: dict, variant: int) -> str:
    return (f"<|message_model|>{name}<|content_invoke_tool_json|>{_json({'name': name, 'args': args})}"
            "<|end_message|>")


def cwm(name: str, args: dict, variant: int) -> str:
    return f"<tool: call>\n{name} {_json(args)}\n</tool>"


def minicpm(name: str, args: dict, variant: int) -> str:
    def value(text: object) -> str:
        text = _string(text)
        return f"<![CDATA[{text}]]>" if "<" in text or variant % 2 else text
    parameters = "".join(f'<param name="{key}">{value(item)}</param>' for key, item in args.items())
    return f'<function name="{name}">{parameters}</function>'


def step3(name: str, args: dict, variant: int) -> str:
    parameters = "".join(f'<steptml:parameter name="{key}">{_string(value)}</steptml:parameter>'
                         for key, value in args.items())
    invoke = f'<steptml:invoke name="{name}">{parameters}</steptml:invoke>'
    if variant % 2:
        return f"<steptml:toolcall>\n{invoke}\n</steptml:toolcall>"
    return f"<｜tool_calls_begin｜><｜tool_call_begin｜>function<｜tool_sep｜>{invoke}<｜tool_call_end｜><｜tool_calls_end｜>"


FAMILY_RENDERERS: dict[str, Renderer] = {
    "lfm2": lfm2, "pangu": pangu, "granite_pythonic": granite_pythonic, "olmo3": olmo3, "cohere": cohere,
    "gigachat": gigachat, "kimi_k3": kimi_k3, "hunyuan": hunyuan, "k2_horizon": k2_horizon,
    "solar_open": solar_open, "plamo": plamo, "apertus": apertus, "inkling": inkling, "cwm": cwm,
    "minicpm": minicpm, "step3": step3,
}
