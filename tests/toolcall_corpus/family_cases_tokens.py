"""Families that write special tokens or call syntax: Mistral, Llama, pythonic, Olmo 3, LFM2, Granite, Cohere, GigaChat, Harmony and the rest."""
from __future__ import annotations

from toolcall_corpus.family_helpers import (C, GCML, GQ, PL, RANGE_TOOLS, ST_CALL_BEGIN, ST_CALL_END,
    ST_CALLS_BEGIN, ST_CALLS_END, ST_SEP)

CASES = [
    # ================================================================== mistral (pre-v11, v11, v13+, Magistral)
    C("mistral-v13-args", "mistral",
      '[TOOL_CALLS]read_file[ARGS]{"file_path": "docs/index.md"}',
      [["read_file", {"file_path": "docs/index.md"}]]),
    C("mistral-v13-two-calls", "mistral",
      '[TOOL_CALLS]shell[ARGS]{"command": "go vet ./..."}[TOOL_CALLS]shell[ARGS]{"command": "go test ./..."}',
      [["shell", {"command": "go vet ./..."}], ["shell", {"command": "go test ./..."}]]),
    C("mistral-v11-no-args-marker", "mistral",
      '[TOOL_CALLS]get_weather{"city": "Turin", "days": 1}',
      [["get_weather", {"city": "Turin", "days": 1}]]),
    C("mistral-prev11-array-two", "mistral",
      '[TOOL_CALLS] [{"name": "shell", "arguments": {"command": "ls"}}, {"name": "todo_read", "arguments": {}}]',
      [["shell", {"command": "ls"}], ["todo_read", {}]]),
    C("mistral-prev11-prose-before", "mistral",
      'Sure.[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Nice"}}]',
      [["get_weather", {"city": "Nice"}]], ["Sure."]),
    C("mistral-magistral-think", "mistral",
      '[THINK]The user wants the date.[/THINK][TOOL_CALLS]shell[ARGS]{"command": "date"}',
      [["shell", {"command": "date"}]], thinking="The user wants the date."),
    C("mistral-prev11-trailing-text", "mistral",
      '[TOOL_CALLS] [{"name": "shell", "arguments": {"command": "uptime"}}]\nThat should do it.',
      [["shell", {"command": "uptime"}]], ["That should do it."]),
    C("mistral-call-id", "mistral",
      '[TOOL_CALLS]shell[CALL_ID]a1b2c3d4e[ARGS]{"command": "id -u"}',
      [["shell", {"command": "id -u"}]]),

    # ================================================================== llama3_json (Llama 3.1/3.2/3.3, Llama 4 json)
    C("llama3-bare-parameters", "llama3_json",
      '{"name": "shell", "parameters": {"command": "uptime"}}',
      [["shell", {"command": "uptime"}]]),
    C("llama3-python-tag-semicolon", "llama3_json",
      '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Denver"}}; {"name": "get_weather", "parameters": {"city": "Boise"}}',
      [["get_weather", {"city": "Denver"}], ["get_weather", {"city": "Boise"}]]),
    C("llama3-arguments-key", "llama3_json",
      '{"name": "read_file", "arguments": {"file_path": "main.c"}}',
      [["read_file", {"file_path": "main.c"}]]),
    C("llama3-eom-trailer", "llama3_json",
      '<|python_tag|>{"name": "shell", "parameters": {"command": "ls /tmp"}}<|eom_id|>',
      [["shell", {"command": "ls /tmp"}]]),

    # ================================================================== llama4_pythonic / pythonic (ToolACE, Llama 3.2 small)
    C("llama4-python-start-two", "llama4_pythonic",
      '<|python_start|>[read_file(file_path="go.sum"), shell(command="go mod tidy")]<|python_end|>',
      [["read_file", {"file_path": "go.sum"}], ["shell", {"command": "go mod tidy"}]]),
    C("pythonic-literals", "pythonic",
      "[get_weather(city='Madrid', days=2, metric=True)]",
      [["get_weather", {"city": "Madrid", "days": 2, "metric": True}]]),
    C("pythonic-nested-and-none", "pythonic",
      "[search(query='bm25', filters={'lang': 'en'}, tags=['ir', 'ranking'], threshold=None)]",
      [["search", {"query": "bm25", "filters": {"lang": "en"}, "tags": ["ir", "ranking"], "threshold": None}]]),
    C("pythonic-zero-arg", "pythonic", "[todo_read()]", [["todo_read", {}]]),

    # ================================================================== olmo3 (<function_calls> with pythonic lines)
    C("olmo3-two-lines", "olmo3",
      '<function_calls>get_weather(city="Porto")\nshell(command="ls -a")</function_calls>',
      [["get_weather", {"city": "Porto"}], ["shell", {"command": "ls -a"}]]),
    C("olmo3-json-literals", "olmo3",
      '<function_calls>\nsearch(query="olmo", threshold=null)\nget_weather(city="Seattle", metric=true)\n</function_calls>',
      [["search", {"query": "olmo", "threshold": None}], ["get_weather", {"city": "Seattle", "metric": True}]]),
    C("olmo3-zero-arg", "olmo3", "<function_calls>todo_read()</function_calls>", [["todo_read", {}]]),

    # ================================================================== lfm2 (LiquidAI LFM2 / LFM2.5)
    C("lfm2-pythonic-content-after", "lfm2",
      '<|tool_call_start|>[get_weather(city="Quito")]<|tool_call_end|>Checking the forecast now.',
      [["get_weather", {"city": "Quito"}]], ["Checking the forecast now."]),
    C("lfm2-json-inside", "lfm2",
      '<|tool_call_start|>[{"name": "shell", "arguments": {"command": "ls -lh"}}]<|tool_call_end|>',
      [["shell", {"command": "ls -lh"}]], note="SGLang LFM2 detector also accepts a JSON list"),
    C("lfm2-parallel", "lfm2",
      "<|tool_call_start|>[read_file(file_path='a.py'), read_file(file_path='b.py', start=10)]<|tool_call_end|>",
      [["read_file", {"file_path": "a.py"}], ["read_file", {"file_path": "b.py", "start": 10}]]),
    C("lfm2-leading-zero-int", "lfm2",
      "<|tool_call_start|>[read_file(file_path='log.txt', start=08)]<|tool_call_end|>",
      [["read_file", {"file_path": "log.txt", "start": 8}]], note="vLLM LFM2 rewrites 08 -> 8"),
    C("lfm2-nested-same-quotes", "lfm2",
      "<|tool_call_start|>[shell(command='grep -n 'TODO' src/main.py')]<|tool_call_end|>",
      [["shell", {"command": "grep -n 'TODO' src/main.py"}]], note="vLLM LFM2 repairs unescaped inner quotes"),
    C("lfm2-raw-newline-in-string", "lfm2",
      "<|tool_call_start|>[write_file(file_path='r.sh', content='#!/bin/sh\necho hi')]<|tool_call_end|>",
      [["write_file", {"file_path": "r.sh", "content": "#!/bin/sh\necho hi"}]]),
    C("lfm2-keyword-param", "lfm2",
      "<|tool_call_start|>[copy_lines(file_path='a.txt', from=3, to=9)]<|tool_call_end|>",
      [["copy_lines", {"file_path": "a.txt", "from": 3, "to": 9}]], tools=RANGE_TOOLS,
      note="'from' is a Python keyword; vLLM/SGLang rename it before ast.parse"),
    C("lfm2-echo-after-end", "lfm2",
      '<|tool_call_start|>[shell(command="ls")]<|tool_call_end|>[shell(command="ls")]<|tool_call_end|>',
      [["shell", {"command": "ls"}]], note="LFM2 echoes the body after the end token; vLLM drops the echo"),
    C("lfm2-bad-sibling-dropped", "lfm2",
      "<|tool_call_start|>[get_weather(city='Quito'), get_weather(city=b'raw')]<|tool_call_end|>",
      [["get_weather", {"city": "Quito"}]], ["get_weather(city=b'raw')"],
      note="partial acceptance inside one list: the unconvertible sibling stays text (vLLM drops it)"),

    # ================================================================== granite_20b_fc
    C("granite20b-single", "granite_20b_fc",
      '<function_call> {"name": "get_weather", "arguments": {"city": "Bern"}}',
      [["get_weather", {"city": "Bern"}]]),
    C("granite20b-two-newline", "granite_20b_fc",
      '<function_call> {"name": "shell", "arguments": {"command": "hostname"}}\n<function_call> {"name": "todo_read", "arguments": {}}',
      [["shell", {"command": "hostname"}], ["todo_read", {}]]),
    C("granite20b-prose-before", "granite_20b_fc",
      'Let me check.\n<function_call> {"name": "read_file", "arguments": {"file_path": "VERSION"}}',
      [["read_file", {"file_path": "VERSION"}]], ["Let me check."]),

    # ================================================================== granite (3.0 <|tool_call|>, 3.1 <tool_call>[…], 3.2/3.3 reasoning)
    C("granite30-token-array", "granite",
      '<|tool_call|>[{"name": "shell", "arguments": {"command": "ip a"}}]',
      [["shell", {"command": "ip a"}]]),
    C("granite31-tag-array", "granite",
      '<tool_call>[{"name": "get_weather", "arguments": {"city": "Lugano"}}, {"name": "shell", "arguments": {"command": "date"}}]',
      [["get_weather", {"city": "Lugano"}], ["shell", {"command": "date"}]], note="no closing tag in Granite 3.1"),
    C("granite33-thought-process", "granite",
      "Here is my thought process: The user wants a listing.\nHere is my response: "
      '<|tool_call|>[{"name": "shell", "arguments": {"command": "ls"}}]',
      [["shell", {"command": "ls"}]], thinking="The user wants a listing.\n",
      note="vLLM granite reasoning parser markers"),
    C("granite-pythonic-line", "granite_pythonic",
      'get_weather(city="Oslo", days=2)',
      [["get_weather", {"city": "Oslo", "days": 2}]], note="Granite 3.3 / 4.0-H-Small bare Python call lines"),
    C("granite-pythonic-two-lines-prose", "granite_pythonic",
      'I will run two commands.\nshell(command="whoami")\nshell(command="id")',
      [["shell", {"command": "whoami"}], ["shell", {"command": "id"}]], ["I will run two commands."]),

    # ================================================================== cohere (Command R7B / Command A = cmd3, Command A reasoning/plus = cmd4)
    C("cohere-cmd3-think-action", "cohere",
      '<|START_THINKING|>I will look up the weather in Accra.<|END_THINKING|><|START_ACTION|>\n[\n'
      '    {"tool_call_id": "0", "tool_name": "get_weather", "parameters": {"city": "Accra"}}\n]\n<|END_ACTION|>',
      [["get_weather", {"city": "Accra"}]], thinking="I will look up the weather in Accra."),
    C("cohere-two-actions", "cohere",
      '<|START_THINKING|>Two things.<|END_THINKING|><|START_ACTION|>[\n'
      '    {"tool_call_id": "0", "tool_name": "shell", "parameters": {"command": "lsblk"}},\n'
      '    {"tool_call_id": "1", "tool_name": "read_file", "parameters": {"file_path": "/etc/fstab"}}\n]<|END_ACTION|>',
      [["shell", {"command": "lsblk"}], ["read_file", {"file_path": "/etc/fstab"}]], thinking="Two things."),
    C("cohere-cmd3-response-only", "cohere",
      "<|START_THINKING|>Nothing to call.<|END_THINKING|>\n<|START_RESPONSE|>It is sunny in Accra.<|END_RESPONSE|>",
      [], ["It is sunny in Accra."], thinking="Nothing to call."),
    C("cohere-cmd4-text-block", "cohere",
      "<|START_THINKING|>Greeting.<|END_THINKING|><|START_TEXT|>Hello! How can I help?<|END_TEXT|>",
      [], ["Hello! How can I help?"], thinking="Greeting."),
    C("cohere-citations-stripped", "cohere",
      "<|START_RESPONSE|>The report says <co>revenue grew</co: 0:[1]> last year.<|END_RESPONSE|>",
      [], ["The report says revenue grew last year."], note="cohere_melody strips <co> citation spans"),
    C("cohere-action-without-thinking", "cohere",
      '<|START_ACTION|>[{"tool_call_id": "0", "tool_name": "todo_read", "parameters": {}}]<|END_ACTION|>',
      [["todo_read", {}]], note="reasoning off: the template already closed thinking"),
    C("cohere-action-truncated", "cohere",
      '<|START_ACTION|>[{"tool_call_id": "0", "tool_name": "shell", "parameters": {"command": "ls"}}',
      [["shell", {"command": "ls"}]], note="SGLang falls back to partial JSON when <|END_ACTION|> is missing"),

    # ================================================================== gigachat3 (GigaChat 3 / 3.1)
    C("gigachat3-function-call-header", "gigachat3",
      '<|message_sep|>\n\nfunction call<|role_sep|>\n{"name": "get_weather", "arguments": {"city": "Kazan"}}',
      [["get_weather", {"city": "Kazan"}]]),
    C("gigachat3-prose-and-eos", "gigachat3",
      'Сейчас проверю.<|message_sep|>\n\nfunction call<|role_sep|>\n{"name": "shell", "arguments": {"command": "uptime"}}</s>',
      [["shell", {"command": "uptime"}]], ["Сейчас проверю."]),
    C("gigachat31-inline-token", "gigachat3",
      'One moment.<|function_call|>{"name": "read_file", "arguments": {"file_path": "todo.txt"}}',
      [["read_file", {"file_path": "todo.txt"}]], ["One moment."]),
    C("gigachat3-parameterless", "gigachat3",
      '<|message_sep|>\n\nfunction call<|role_sep|>\n{"name": "todo_read", "arguments": {}}</s>',
      [["todo_read", {}]]),

    # ================================================================== gigachat35 (GCML)
    C("gigachat35-gcml", "gigachat35",
      f'Checking.<{GCML}tool_calls><{GCML}invoke name="get_weather"><{GCML}parameter name="city" string="true">Perm</{GCML}parameter>'
      f'<{GCML}parameter name="days" string="false">2</{GCML}parameter></{GCML}invoke></{GCML}tool_calls><|message_sep|>',
      [["get_weather", {"city": "Perm", "days": 2}]], ["Checking."]),

    # ================================================================== harmony (gpt-oss-20b/120b)
    C("harmony-analysis-then-call", "harmony",
      "<|channel|>analysis<|message|>Need the weather for Tokyo.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather "
      '<|constrain|>json<|message|>{"city":"Tokyo"}<|call|>',
      [["get_weather", {"city": "Tokyo"}]], thinking="Need the weather for Tokyo."),
    C("harmony-full-framing", "harmony",
      "<|start|>assistant<|channel|>analysis<|message|>List files.<|end|><|start|>assistant<|channel|>commentary to=functions.shell "
      '<|constrain|>json<|message|>{"command":"ls -la"}<|call|>',
      [["shell", {"command": "ls -la"}]], thinking="List files."),
    C("harmony-final-only", "harmony",
      "<|channel|>analysis<|message|>Just greet back.<|end|><|start|>assistant<|channel|>final<|message|>Hello there!<|return|>",
      [], ["Hello there!"], thinking="Just greet back."),
    C("harmony-recipient-in-header", "harmony",
      '<|start|>assistant to=functions.read_file<|channel|>commentary json<|message|>{"file_path":"Cargo.toml"}<|call|>',
      [["read_file", {"file_path": "Cargo.toml"}]], note="the recipient may sit in the role header"),
    C("harmony-no-constrain", "harmony",
      '<|channel|>commentary to=functions.shell<|message|>{"command":"df"}<|call|>',
      [["shell", {"command": "df"}]]),
    C("harmony-preamble-then-call", "harmony",
      "<|channel|>commentary<|message|>Let me check that.<|end|><|start|>assistant<|channel|>commentary to=functions.shell "
      '<|constrain|>json<|message|>{"command":"date"}<|call|>',
      [["shell", {"command": "date"}]], ["Let me check that."],
      note="a commentary message without recipient is a user-visible preamble"),
    C("harmony-call-then-final", "harmony",
      "<|channel|>analysis<|message|>Call then answer.<|end|><|start|>assistant<|channel|>commentary to=functions.todo_read "
      "<|constrain|>json<|message|>{}<|call|><|start|>assistant<|channel|>final<|message|>Reading your todos.<|return|>",
      [["todo_read", {}]], ["Reading your todos."], thinking="Call then answer."),
    C("harmony-skip-special-tokens-text", "harmony",
      "analysisThe user says hi.assistantfinalHi! What can I do for you?",
      [], ["Hi! What can I do for you?"], thinking="The user says hi.",
      note="what gpt-oss looks like when a server strips special tokens; SGLang checks 'assistantfinal'"),

    C("harmony-rendered-conversation", "harmony",
      "<|start|>system<|message|>You are a helpful assistant.<|end|><|start|>user<|message|>Weather in Quito?<|end|>"
      "<|start|>assistant<|channel|>analysis<|message|>Look it up.<|end|>"
      '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Quito"}<|call|>'
      '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{"temp": 21}<|end|>'
      "<|start|>assistant<|channel|>final<|message|>It is 21 degrees in Quito.<|return|>",
      [["get_weather", {"city": "Quito"}]], ["It is 21 degrees in Quito."], thinking="Look it up.",
      note="a whole rendered conversation: system, user and tool-result turns are not the answer"),
    # ================================================================== muse_glimmer (ATEM)
    C("muse-atem-invoke", "muse_glimmer",
      '<|start|>assistant to=functions<|message|><atem:function_calls>\n<atem:invoke name="get_weather">\n'
      '<atem:parameter name="city">Riga</atem:parameter>\n</atem:invoke>\n</atem:function_calls><|eom|>',
      [["get_weather", {"city": "Riga"}]]),

    # ================================================================== internlm (InternLM2/2.5, Intern-S1)
    C("internlm-action", "internlm",
      'Let me check.<|action_start|><|plugin|>\n{"name": "shell", "parameters": {"command": "ls"}}<|action_end|>',
      [["shell", {"command": "ls"}]], ["Let me check."]),
    C("interns1-think-arguments-key", "internlm",
      '<think>Look at the weather.</think>\n<|action_start|><|plugin|>\n{"name": "get_weather", "arguments": {"city": "Suzhou"}}<|action_end|>',
      [["get_weather", {"city": "Suzhou"}]], thinking="Look at the weather."),

    # ================================================================== xlam (Salesforce xLAM)
    C("xlam-bare-array", "xlam",
      '[{"name": "get_weather", "arguments": {"city": "Doha"}}]', [["get_weather", {"city": "Doha"}]]),
    C("xlam-fenced-with-prose", "xlam",
      'Here you go:\n```json\n[{"name": "shell", "arguments": {"command": "ls"}}, {"name": "todo_read", "arguments": {}}]\n```',
      [["shell", {"command": "ls"}], ["todo_read", {}]], ["Here you go:"]),
    C("xlam-after-think", "xlam",
      '<think>One call.</think>[{"name": "read_file", "arguments": {"file_path": "a.md"}}]',
      [["read_file", {"file_path": "a.md"}]], thinking="One call.",
      note="vLLM xLAM: JSON right after </think>, no newline"),

    # ================================================================== phi4_mini
    C("phi4mini-functools", "phi4_mini",
      'functools[{"name": "get_weather", "arguments": {"city": "Nice"}}]', [["get_weather", {"city": "Nice"}]]),
    C("phi4mini-parameters-key-two", "phi4_mini",
      'functools[{"name": "shell", "parameters": {"command": "ls"}}, {"name": "todo_read", "parameters": {}}]',
      [["shell", {"command": "ls"}], ["todo_read", {}]]),

    # ================================================================== apertus (Swiss AI Apertus)
    C("apertus-name-keyed", "apertus",
      '<|tools_prefix|>[{"get_weather": {"city": "Zurich"}}]<|tools_suffix|>',
      [["get_weather", {"city": "Zurich"}]], note="each call is a one-key object {name: arguments}"),
    C("apertus-two-prose", "apertus",
      'I will check. <|tools_prefix|>[{"shell": {"command": "ls"}}, {"todo_read": {}}]<|tools_suffix|>',
      [["shell", {"command": "ls"}], ["todo_read", {}]], ["I will check."]),
    C("apertus-inner-reasoning", "apertus",
      '<|inner_prefix|>Look up Geneva.<|inner_suffix|><|tools_prefix|>[{"get_weather": {"city": "Geneva"}}]<|tools_suffix|>',
      [["get_weather", {"city": "Geneva"}]], thinking="Look up Geneva."),

    # ================================================================== ernie45 (ERNIE 4.5 / 4.5-VL thinking)
    C("ernie45-bare-think-call", "ernie45",
      'I should check the weather.\n</think>\n\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Xi\'an"}}\n</tool_call>\n',
      [["get_weather", {"city": "Xi'an"}]], thinking="I should check the weather.\n"),
    C("ernie45-response-wrapper", "ernie45",
      "Simple greeting.\n</think>\n\n<response>\nHello, nice to meet you.\n</response>",
      [], ["Hello, nice to meet you."], thinking="Simple greeting.\n"),

    # ================================================================== longcat (Meituan LongCat-Flash)
    C("longcat-tag", "longcat",
      '<longcat_tool_call>{"name": "shell", "arguments": {"command": "whoami"}}</longcat_tool_call>',
      [["shell", {"command": "whoami"}]]),
    C("longcat-two-tags-prose", "longcat",
      'Two reads.\n<longcat_tool_call>\n{"name": "read_file", "arguments": {"file_path": "a"}}\n</longcat_tool_call>\n'
      '<longcat_tool_call>\n{"name": "read_file", "arguments": {"file_path": "b"}}\n</longcat_tool_call>',
      [["read_file", {"file_path": "a"}], ["read_file", {"file_path": "b"}]], ["Two reads."]),

    # ================================================================== step3 (StepFun Step-3 steptml)
    C("step3-steptml", "step3",
      f'{ST_CALLS_BEGIN}{ST_CALL_BEGIN}function{ST_SEP}<steptml:invoke name="get_weather"><steptml:parameter name="city">Baku</steptml:parameter>'
      f'<steptml:parameter name="days">3</steptml:parameter></steptml:invoke>{ST_CALL_END}{ST_CALLS_END}',
      [["get_weather", {"city": "Baku", "days": 3}]]),
    C("step3-bare-think-two", "step3",
      f'Two commands needed.</think>{ST_CALLS_BEGIN}{ST_CALL_BEGIN}function{ST_SEP}<steptml:invoke name="shell"><steptml:parameter name="command">id</steptml:parameter></steptml:invoke>{ST_CALL_END}'
      f'{ST_CALL_BEGIN}function{ST_SEP}<steptml:invoke name="shell"><steptml:parameter name="command">pwd</steptml:parameter></steptml:invoke>{ST_CALL_END}{ST_CALLS_END}',
      [["shell", {"command": "id"}], ["shell", {"command": "pwd"}]], thinking="Two commands needed."),
    C("stepdeepresearch-toolcall", "step3",
      '<steptml:toolcall>\n<steptml:invoke name="search">\n<steptml:parameter name="query">lsm trees</steptml:parameter>\n'
      '<steptml:parameter name="limit">4</steptml:parameter>\n</steptml:invoke>\n</steptml:toolcall>',
      [["search", {"query": "lsm trees", "limit": 4}]], note="step_deepresearch parser (old vLLM path)"),
    C("step3-without-function-separator", "step3",
      f'{ST_CALLS_BEGIN}{ST_CALL_BEGIN}<steptml:invoke name="get_weather"><steptml:parameter name="city">Oslo</steptml:parameter>'
      f'</steptml:invoke>{ST_CALL_END}{ST_SEP}{ST_CALL_BEGIN}<steptml:invoke name="shell"><steptml:parameter name="command">uptime'
      f'</steptml:parameter></steptml:invoke>{ST_CALL_END}{ST_CALLS_END}',
      [["get_weather", {"city": "Oslo"}], ["shell", {"command": "uptime"}]],
      note="vLLM's step3 tests write the invoke right after the call token, no function<sep>"),
    C("stepaudio2-lines", "step_audio_2",
      '<tool_call>function\nget_weather\n{"city": "Pune"}</tool_call>', [["get_weather", {"city": "Pune"}]]),

    # ================================================================== gemma4 / functiongemma
    C("gemma4-basic", "gemma4",
      f"<|tool_call>call:get_weather{{city:{GQ}Cairo{GQ},days:2}}<tool_call|>",
      [["get_weather", {"city": "Cairo", "days": 2}]]),
    C("gemma4-nested", "gemma4",
      f"<|tool_call>call:search{{query:{GQ}bloom filter{GQ},tags:[{GQ}ds{GQ},{GQ}prob{GQ}],filters:{{lang:{GQ}en{GQ}}},limit:3}}<tool_call|>",
      [["search", {"query": "bloom filter", "tags": ["ds", "prob"], "filters": {"lang": "en"}, "limit": 3}]]),
    C("gemma4-two-calls-prose", "gemma4",
      f"Checking both.<|tool_call>call:shell{{command:{GQ}ls{GQ}}}<tool_call|><|tool_call>call:todo_read{{}}<tool_call|>",
      [["shell", {"command": "ls"}], ["todo_read", {}]], ["Checking both."]),
    C("gemma4-thought-channel", "gemma4",
      f"<|channel>thought\nPlan the lookup.<channel|><|tool_call>call:get_weather{{city:{GQ}Giza{GQ}}}<tool_call|>",
      [["get_weather", {"city": "Giza"}]], thinking="Plan the lookup."),
    C("gemma4-delimiters-in-string", "gemma4",
      f"<|tool_call>call:shell{{command:{GQ}echo {{a: 1}}, [b]{GQ}}}<tool_call|>",
      [["shell", {"command": "echo {a: 1}, [b]"}]]),
    C("gemma4-bare-bool", "gemma4",
      f"<|tool_call>call:get_weather{{city:{GQ}Aswan{GQ},metric:true}}<tool_call|>",
      [["get_weather", {"city": "Aswan", "metric": True}]]),
    C("functiongemma-escape", "functiongemma",
      "<start_function_call>call:get_weather{city:<escape>Lagos<escape>}<end_function_call>",
      [["get_weather", {"city": "Lagos"}]]),
    C("functiongemma-prose-two", "functiongemma",
      "Sure.<start_function_call>call:shell{command:<escape>ls<escape>}<end_function_call>"
      "<start_function_call>call:read_file{file_path:<escape>x.txt<escape>}<end_function_call>",
      [["shell", {"command": "ls"}], ["read_file", {"file_path": "x.txt"}]], ["Sure."]),

    # ================================================================== dots (rednote dots.llm)
    C("dots-invoke", "dots",
      '<dots_function_call>\n<invoke name="search">\n<parameter name="query">rust async</parameter>\n</invoke>\n</dots_function_call>',
      [["search", {"query": "rust async"}]]),
    C("dots-unquoted-two-blocks", "dots",
      "<dots_function_call><invoke name=get_weather><parameter name=city>Paris</parameter></invoke></dots_function_call>"
      "<dots_function_call><invoke name=get_weather><parameter name=city>Berlin</parameter></invoke></dots_function_call>",
      [["get_weather", {"city": "Paris"}], ["get_weather", {"city": "Berlin"}]]),
    C("dots-json-fallback", "dots",
      '<dots_function_call>{"name": "shell", "arguments": {"command": "ls"}}</dots_function_call>',
      [["shell", {"command": "ls"}]]),

    # ================================================================== cwm (Meta CWM "<tool: …>")
    C("cwm-command-body", "cwm",
      "<think>Search for the definition.</think>\n<tool: bash>\nshell grep -rn \"def bulk\" src\n</tool>",
      [["shell", {"command": "grep -rn \"def bulk\" src"}]], thinking="Search for the definition.",
      note="first token of the body is the tool name; the rest becomes {'command': ...}"),
    C("cwm-json-body", "cwm",
      '<tool: function>\nread_file {"file_path": "setup.py"}\n</tool>',
      [["read_file", {"file_path": "setup.py"}]]),

    # ================================================================== inkling
    C("inkling-invoke-json", "inkling",
      '<|message_model|><|content_thinking|>Weather lookup.<|end_message|><|message_model|>get_weather<|content_invoke_tool_json|>'
      '{"name":"get_weather","args":{"city":"Male"}}<|end_message|>',
      [["get_weather", {"city": "Male"}]], thinking="Weather lookup."),

    # ================================================================== minicpm5 (XML <function name=…><param …>)
    C("minicpm5-function-param", "minicpm5",
      '<function name="get_weather"><param name="city">Minsk</param><param name="days">2</param></function>',
      [["get_weather", {"city": "Minsk", "days": 2}]]),
    C("minicpm5-cdata-after-think", "minicpm5",
      '<think>Write it.</think>\n<function name="write_file"><param name="file_path">a.xml</param>'
      '<param name="content"><![CDATA[<a>&</a>]]></param></function>',
      [["write_file", {"file_path": "a.xml", "content": "<a>&</a>"}]], thinking="Write it."),

    # ================================================================== nemotron (<TOOLCALL>[…])
    C("nemotron-toolcall", "nemotron",
      '<TOOLCALL>[{"name": "shell", "arguments": {"command": "nvidia-smi"}}]</TOOLCALL>',
      [["shell", {"command": "nvidia-smi"}]]),
    C("nemotron-think-prose", "nemotron",
      '<think>GPU check.</think>Checking the GPUs.<TOOLCALL>[{"name": "shell", "arguments": {"command": "nvidia-smi -L"}}, '
      '{"name": "todo_read", "arguments": {}}]</TOOLCALL>',
      [["shell", {"command": "nvidia-smi -L"}], ["todo_read", {}]], ["Checking the GPUs."], thinking="GPU check."),

    # ================================================================== pangu (openPangu v1 [unused11]/v2 <|tool_call_start|> JSON)
    C("openpangu-json-list", "pangu",
      '<|tool_call_start|>[{"name": "get_weather", "arguments": {"city": "Shenzhen"}}]<|tool_call_end|>',
      [["get_weather", {"city": "Shenzhen"}]], note="same tokens as LFM2 but a JSON list"),
    C("pangu-unused-tokens", "pangu",
      'Querying.[unused11][{"name": "shell", "arguments": {"command": "ls"}}][unused12]',
      [["shell", {"command": "ls"}]], ["Querying."]),

    # ================================================================== plamo3
    C("plamo3-tags", "plamo3",
      f'{PL["begin_tool_requests"]}{PL["begin_tool_request"]}{PL["begin_tool_name"]}get_weather{PL["end_tool_name"]}'
      f'{PL["begin_tool_arguments"]}{{"city": "Osaka"}}{PL["end_tool_arguments"]}{PL["end_tool_request"]}{PL["end_tool_requests"]}',
      [["get_weather", {"city": "Osaka"}]]),

    # ================================================================== rwkv
    C("rwkv-marker-fence", "rwkv",
      '**Tool Call:**\n```json\n{"name": "shell", "arguments": {"command": "ls"}}\n```',
      [["shell", {"command": "ls"}]], note="the '**Tool Call:**' label is protocol, not prose"),

    # ================================================================== solar_open2
    C("solar-open2", "solar_open2",
      "<|tool_call:start|>get_weather\n<|tool_arg:start|>city<|tool_arg:value|>Busan<|tool_arg:end|>\n"
      "<|tool_arg:start|>days<|tool_arg:value|>2<|tool_arg:end|>\n<|tool_call:end|>",
      [["get_weather", {"city": "Busan", "days": 2}]]),

    # ================================================================== tng (DeepSeek-TNG Chimera: hermes tags, several objects per tag)
    C("tng-array-in-tag", "tng",
      '<think>Two lookups.</think><tool_call>[{"name": "get_weather", "arguments": {"city": "Graz"}}, '
      '{"name": "get_weather", "arguments": {"city": "Linz"}}]</tool_call>',
      [["get_weather", {"city": "Graz"}], ["get_weather", {"city": "Linz"}]], thinking="Two lookups."),

    # ================================================================== trinity (Arcee: Qwen2.5 tags, think tags stripped)
    C("trinity-call-inside-think-executes", "trinity",
      '<think>Reading the file now.\n<tool_call>\n{"name": "read_file", "arguments": {"file_path": "LICENSE"}}\n</tool_call></think>',
      [], thinking='Reading the file now.\n<tool_call>\n{"name": "read_file", "arguments": {"file_path": "LICENSE"}}\n</tool_call>',
      note="policy: a call inside a closed reasoning section is a draft (SGLang Trinity runs it)"),

    # ================================================================== berrylm / iquest_coder (qwen3_coder body)
    C("berrylm-param-ends-at-function", "qwen3_coder",
      "<tool_call>\n<function=shell>\n<parameter=command>\nnpm ci\n</function>\n</tool_call>",
      [["shell", {"command": "npm ci"}]], note="BerryLM detector: a parameter may end at </function>"),
]
