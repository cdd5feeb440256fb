"""Families that write tags: Hermes/Qwen, Seed-OSS, GLM and kin, Hunyuan, Jamba, MiniMax, DeepSeek, Kimi."""
from __future__ import annotations

from toolcall_corpus.family_helpers import (C, DS_CALL_BEGIN, DS_CALL_END, DS_CALLS_BEGIN, DS_CALLS_END,
    DS_SEP, DSML, KC, KO, KS, MM3, NICKNAME_TOOLS, TODO_LIST_TOOLS)

CASES = [
    # ================================================================== hermes (Qwen2.5/3, QwQ, Hermes 2/3, Granite 4)
    C("hermes-prose-then-call", "hermes",
      'Opening the entry point first.\n<tool_call>\n{"name": "read_file", "arguments": {"file_path": "src/app.py"}}\n</tool_call>',
      [["read_file", {"file_path": "src/app.py"}]], ["Opening the entry point first."]),
    C("hermes-two-tags", "hermes",
      '<tool_call>\n{"name": "shell", "arguments": {"command": "git log -3"}}\n</tool_call>\n'
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Tallinn", "days": 2}}\n</tool_call>',
      [["shell", {"command": "git log -3"}], ["get_weather", {"city": "Tallinn", "days": 2}]]),
    C("hermes-arguments-serialized", "hermes",
      '<tool_call>\n{"name": "shell", "arguments": "{\\"command\\": \\"pwd\\"}"}\n</tool_call>',
      [["shell", {"command": "pwd"}]], note="Granite 4 emits arguments as a JSON string"),
    C("hermes-closing-tag-in-value", "hermes",
      '<tool_call>{"name": "write_file", "arguments": {"file_path": "notes.md", "content": "wrap it in </tool_call> like this"}}</tool_call>',
      [["write_file", {"file_path": "notes.md", "content": "wrap it in </tool_call> like this"}]]),
    C("hermes-cut-at-eos", "hermes",
      'Running the tests.\n<tool_call>\n{"name": "shell", "arguments": {"command": "make test"}}',
      [["shell", {"command": "make test"}]], ["Running the tests."],
      note="no </tool_call> before EOS; vLLM hermes accepts it"),
    C("hermes-after-think", "hermes",
      "<think>The user wants today's forecast for Ghent.</think>\n\n"
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Ghent"}}\n</tool_call>',
      [["get_weather", {"city": "Ghent"}]], thinking="The user wants today's forecast for Ghent."),
    C("hermes-qwen35-unclosed-think-implicit-close", "hermes",
      "<think>I need the directory listing first.\n"
      '<tool_call>\n{"name": "shell", "arguments": {"command": "ls -1"}}\n</tool_call>',
      [["shell", {"command": "ls -1"}]], thinking="I need the directory listing first.",
      note="SGLang Qwen3 reasoning parser: <tool_call> inside an unclosed <think> ends reasoning"),
    C("hermes-bool-and-int", "hermes",
      '<tool_call>{"name": "get_weather", "arguments": {"city": "Bergen", "days": 5, "metric": false}}</tool_call> Fetching.',
      [["get_weather", {"city": "Bergen", "days": 5, "metric": False}]], ["Fetching."]),

    # ================================================================== qwen3_coder (Qwen3-Coder, Qwen3.5, iQuest, BerryLM, Step-3.5)
    C("qwen3coder-multiline-content", "qwen3_coder",
      "I'll create the helper.\n<tool_call>\n<function=write_file>\n<parameter=file_path>\nutil/cmp.py\n</parameter>\n"
      "<parameter=content>\ndef less(a, b):\n    return a < b and b > 0\n</parameter>\n</function>\n</tool_call>",
      [["write_file", {"file_path": "util/cmp.py", "content": "def less(a, b):\n    return a < b and b > 0"}]],
      ["I'll create the helper."]),
    C("qwen3coder-int-param", "qwen3_coder",
      "<tool_call>\n<function=read_file>\n<parameter=file_path>\nlib/core.rs\n</parameter>\n<parameter=start>\n120\n</parameter>\n</function>\n</tool_call>",
      [["read_file", {"file_path": "lib/core.rs", "start": 120}]]),
    C("qwen3coder-implicit-parameter-close", "qwen3_coder",
      "<tool_call>\n<function=read_file>\n<parameter=file_path>\nMakefile\n<parameter=start>\n7\n</function>\n</tool_call>",
      [["read_file", {"file_path": "Makefile", "start": 7}]],
      note="SGLang qwen3_coder tests: a parameter may end at the next <parameter= or </function>"),
    C("qwen3coder-two-blocks", "qwen3_coder",
      "<tool_call>\n<function=shell>\n<parameter=command>\ncargo fmt\n</parameter>\n</function>\n</tool_call>\n"
      "<tool_call>\n<function=shell>\n<parameter=command>\ncargo clippy\n</parameter>\n</function>\n</tool_call>",
      [["shell", {"command": "cargo fmt"}], ["shell", {"command": "cargo clippy"}]]),
    C("qwen3coder-array-python-quotes", "qwen3_coder",
      "<tool_call>\n<function=code_search>\n<parameter=searches>\n[{'query': 'fn main', 'language': 'rust'}]\n</parameter>\n</function>\n</tool_call>",
      [["code_search", {"searches": [{"query": "fn main", "language": "rust"}]}]],
      note="array value written with Python quotes; upstream falls back to literal_eval"),
    C("qwen3coder-function-closer-in-value", "qwen3_coder",
      "<tool_call>\n<function=write_file>\n<parameter=file_path>\ntpl.html\n</parameter>\n<parameter=content>\n"
      "<!-- ends at </function> -->\n</parameter>\n</function>\n</tool_call>",
      [["write_file", {"file_path": "tpl.html", "content": "<!-- ends at </function> -->"}]]),
    C("qwen3coder-null-for-a-string", "qwen3_coder",
      "<tool_call>\n<function=get_weather>\n<parameter=city>\nnull\n</parameter>\n</function>\n</tool_call>",
      [["get_weather", {"city": None}]], note="XML can only write null as the word; vLLM and SGLang make it null"),
    C("qwen25coder-tools-tag", "hermes",
      'Reading it.<tools>{"name": "read_file", "arguments": {"file_path": "a.rs"}}</tools>'
      '<tools>{"name": "todo_read", "arguments": {}}</tools>',
      [["read_file", {"file_path": "a.rs"}], ["todo_read", {}]], ["Reading it."],
      note="Qwen2.5-Coder writes <tools> around the Hermes object"),
    C("qwen3coder-null-anyof", "qwen3_coder",
      "<tool_call>\n<function=search>\n<parameter=query>\nflaky tests\n</parameter>\n<parameter=threshold>\nnull\n</parameter>\n</function>\n</tool_call>",
      [["search", {"query": "flaky tests", "threshold": None}]]),
    C("qwen3coder-no-wrapper-after-think", "qwen3_coder",
      "<think>List first.</think>\n<function=shell>\n<parameter=command>\nls src\n</parameter>\n</function>",
      [["shell", {"command": "ls src"}]], thinking="List first.",
      note="SGLang qwen3_coder tests feed <function=...> without <tool_call>"),

    # ================================================================== step3p5 (Step-3.5: qwen3_coder body, R1-style reasoning)
    C("step3p5-bare-think-close-then-xml", "step3p5",
      "Checking the requested city.</think>\n<tool_call>\n<function=get_weather>\n<parameter=city>\nAntalya\n</parameter>\n</function>\n</tool_call>",
      [["get_weather", {"city": "Antalya"}]], thinking="Checking the requested city.",
      note="reasoning parser step3p5 = DeepSeek-R1 style: the prompt opens <think>"),

    # ================================================================== mimo (MiMo: qwen3_coder body, html-unescaped values)
    C("mimo-html-escaped-value", "mimo",
      "<tool_call>\n<function=shell>\n<parameter=command>make lint &amp;&amp; make test</parameter>\n</function>\n</tool_call>",
      [["shell", {"command": "make lint &amp;&amp; make test"}]],
      note="policy: values are never html-unescaped (SGLang MiMo does; Qwen3-Coder writes entities literally in files)"),

    # ================================================================== seed_oss (ByteDance Seed-OSS)
    C("seedoss-think-then-call", "seed_oss",
      "<seed:think>The user asked about Lyon; one call is enough.</seed:think>\n"
      "<seed:tool_call>\n<function=get_weather>\n<parameter=city>Lyon</parameter>\n</function>\n</seed:tool_call>",
      [["get_weather", {"city": "Lyon"}]], thinking="The user asked about Lyon; one call is enough."),
    C("seedoss-call-quoted-in-think", "seed_oss",
      "<seed:think>The format is <seed:tool_call>\n<function=shell>\n<parameter=command>rm -rf build</parameter>\n"
      "</function>\n</seed:tool_call> but I only need a listing.</seed:think>"
      "<seed:tool_call>\n<function=shell>\n<parameter=command>ls build</parameter>\n</function>\n</seed:tool_call>",
      [["shell", {"command": "ls build"}]],
      thinking="The format is <seed:tool_call>\n<function=shell>\n<parameter=command>rm -rf build</parameter>\n"
               "</function>\n</seed:tool_call> but I only need a listing.",
      note="the draft inside <seed:think> must not run"),
    C("seedoss-budget-reflect", "seed_oss",
      "<seed:think>Budget is 256.</seed:cot_budget_reflect>\nOne lookup.\n<seed:cot_budget_reflect>Used 40 tokens.</seed:cot_budget_reflect>\n</seed:think>\n"
      "<seed:tool_call>\n<function=read_file>\n<parameter=file_path>CHANGELOG.md</parameter>\n</function>\n</seed:tool_call>",
      [["read_file", {"file_path": "CHANGELOG.md"}]],
      thinking="Budget is 256.</seed:cot_budget_reflect>\nOne lookup.\n<seed:cot_budget_reflect>Used 40 tokens.</seed:cot_budget_reflect>\n"),
    C("seedoss-two-blocks", "seed_oss",
      "<seed:tool_call>\n<function=todo_read>\n</function>\n</seed:tool_call>\n"
      "<seed:tool_call>\n<function=get_weather>\n<parameter=city>Graz</parameter>\n<parameter=metric>true</parameter>\n</function>\n</seed:tool_call>",
      [["todo_read", {}], ["get_weather", {"city": "Graz", "metric": True}]]),

    # ================================================================== glm45 (GLM-4.5/4.6/4.7, arg_key/arg_value)
    C("glm45-multiline", "glm45",
      "Let me look that up.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Chengdu</arg_value>\n"
      "<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>",
      [["get_weather", {"city": "Chengdu", "days": 3}]], ["Let me look that up."]),
    C("glm47-compact", "glm45",
      "<tool_call>read_file<arg_key>file_path</arg_key><arg_value>cmd/main.go</arg_value><arg_key>start</arg_key><arg_value>30</arg_value></tool_call>",
      [["read_file", {"file_path": "cmd/main.go", "start": 30}]]),
    C("glm47-escaped-json-array", "glm45",
      '<tool_call>code_search<arg_key>searches</arg_key><arg_value>[{\\"query\\": \\"TODO\\", \\"language\\": \\"go\\"}]</arg_value></tool_call>',
      [["code_search", {"searches": [{"query": "TODO", "language": "go"}]}]],
      note="SGLang GLM-4.7 tests: JSON inside arg_value with backslash-escaped quotes"),
    C("glm47-escaped-json-backslash", "glm45",
      '<tool_call>plan_update<arg_key>steps</arg_key><arg_value>[{\\"id\\": \\"1\\", \\"task\\": \\"open C:\\\\\\\\tmp\\\\\\\\x.txt\\"}]</arg_value></tool_call>',
      [["plan_update", {"steps": [{"id": "1", "task": "open C:\\tmp\\x.txt"}]}]], tools=TODO_LIST_TOOLS),
    C("glm45-no-arg-newline", "glm45",
      "<tool_call>todo_read\n</tool_call>", [["todo_read", {}]]),
    C("glm45-think-then-call", "glm45",
      "<think>Two cities, two calls.</think>\nChecking both.\n"
      "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Wuhan</arg_value>\n</tool_call>\n"
      "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Xiamen</arg_value>\n</tool_call>",
      [["get_weather", {"city": "Wuhan"}], ["get_weather", {"city": "Xiamen"}]], ["Checking both."],
      thinking="Two cities, two calls."),
    C("glm45-numeric-looking-string", "glm45",
      "<tool_call>shell\n<arg_key>command</arg_key>\n<arg_value>42</arg_value>\n</tool_call>",
      [["shell", {"command": "42"}]], note="string-typed parameter keeps the raw text"),
    C("glm45-prose-between", "glm45",
      "First the file.\n<tool_call>read_file\n<arg_key>file_path</arg_key>\n<arg_value>a.txt</arg_value>\n</tool_call>\n"
      "Then the weather.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Hue</arg_value>\n</tool_call>",
      [["read_file", {"file_path": "a.txt"}], ["get_weather", {"city": "Hue"}]], ["First the file.", "Then the weather."]),

    # ================================================================== glm53_flash (JSON after "name>")
    C("glm53flash-json-after-gt", "glm53_flash",
      '<tool_call>get_weather>{"city": "Harbin", "days": 1}',
      [["get_weather", {"city": "Harbin", "days": 1}]],
      note="SGLang glm53_flash: name, '>', JSON, no closing tag"),

    # ================================================================== ling3 (GLM-4.5 body, tolerant newlines)
    C("ling3-arg-right-after-name", "ling3",
      "<tool_call>read_file<arg_key>file_path</arg_key>\n<arg_value>pkg/a.ts</arg_value>\n</tool_call>",
      [["read_file", {"file_path": "pkg/a.ts"}]]),

    # ================================================================== poolside_v1 (Laguna: GLM body, one wrapping newline)
    C("poolside-wrapped-value", "poolside_v1",
      "<tool_call>shell\n<arg_key>command</arg_key>\n<arg_value>\ngit status --short\n</arg_value>\n</tool_call>",
      [["shell", {"command": "git status --short"}]]),

    # ================================================================== hyperclovax_seed_think (GLM body, R1-style reasoning)
    C("hyperclovax-bare-think-close", "hyperclovax",
      "The user wants Busan weather.</think>\n\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Busan</arg_value>\n</tool_call>",
      [["get_weather", {"city": "Busan"}]], thinking="The user wants Busan weather."),

    # ================================================================== spark (Spark3 / Spark2.5 XML-KV)
    C("spark-xml-kv", "spark",
      "<tool_call>get_weather\n<arg_key>city</arg_key><arg_value>Hefei</arg_value>\n<arg_key>metric</arg_key><arg_value>false</arg_value>\n</tool_call>",
      [["get_weather", {"city": "Hefei", "metric": False}]]),

    # ================================================================== iquest_q1 (GLM-4.7 body in its own tag)
    C("iquestq1-own-tag", "iquest_q1",
      "<iquest_tool_call>read_file<arg_key>file_path</arg_key><arg_value>server.go</arg_value></iquest_tool_call>",
      [["read_file", {"file_path": "server.go"}]]),

    # ================================================================== hunyuan v3/v4 (<tool_calls><tool_call>name<tool_sep>…)
    C("hyv3-tool-sep", "hunyuan_hy",
      "<tool_calls>\n<tool_call>get_weather<tool_sep>\n<arg_key>city</arg_key>\n<arg_value>Seoul</arg_value>\n"
      "<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>\n</tool_calls>",
      [["get_weather", {"city": "Seoul", "days": 2}]]),
    C("hyv3-two-calls-prose", "hunyuan_hy",
      "Both at once.<tool_calls><tool_call>shell<tool_sep><arg_key>command</arg_key><arg_value>uname -a</arg_value></tool_call>"
      "<tool_call>todo_read<tool_sep></tool_call></tool_calls>",
      [["shell", {"command": "uname -a"}], ["todo_read", {}]], ["Both at once."]),
    C("hyv4-suffixed-tokens", "hunyuan_hy",
      "<tool_calls:6124c78e><tool_call:6124c78e>read_file<arg_key:6124c78e>file_path</arg_key:6124c78e>"
      "<arg_value:6124c78e>go.mod</arg_value:6124c78e></tool_call:6124c78e></tool_calls:6124c78e>",
      [["read_file", {"file_path": "go.mod"}]],
      note="HY v4 checkpoints append a per-checkpoint suffix to every structural token"),

    # ================================================================== hunyuan_a13b (<tool_calls>[json] inside <answer>)
    C("hunyuana13b-answer-wrapper", "hunyuan_a13b",
      "<think>Weather lookup.</think>\n<answer>\n<tool_calls>[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hanoi\"}}]</tool_calls>\n</answer>",
      [["get_weather", {"city": "Hanoi"}]], thinking="Weather lookup."),
    C("hunyuana13b-call-in-think-ignored", "hunyuan_a13b",
      "<think>Maybe <tool_calls>[{\"name\": \"shell\", \"arguments\": {\"command\": \"reboot\"}}]</tool_calls>? No.</think>\n<answer>No action needed.</answer>",
      [], ["No action needed."],
      thinking="Maybe <tool_calls>[{\"name\": \"shell\", \"arguments\": {\"command\": \"reboot\"}}]</tool_calls>? No."),

    # ================================================================== jamba (AI21 Jamba 1.5/1.6)
    C("jamba-array", "jamba",
      '<tool_calls>[{"name": "shell", "arguments": {"command": "df -h"}}, {"name": "get_weather", "arguments": {"city": "Haifa"}}]</tool_calls>',
      [["shell", {"command": "df -h"}], ["get_weather", {"city": "Haifa"}]]),
    C("jamba-prose-before", "jamba",
      'Checking disk space.\n<tool_calls>[{"name": "shell", "arguments": {"command": "du -sh ."}}]</tool_calls>',
      [["shell", {"command": "du -sh ."}]], ["Checking disk space."]),

    # ================================================================== minimax_m1 (<tool_calls> one JSON object per line)
    C("minimaxm1-lines", "minimax_m1",
      "<think>Two lookups.</think>\n<tool_calls>\n{\"name\": \"search\", \"arguments\": {\"query\": \"sglang\"}}\n"
      "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Kyiv\"}}\n</tool_calls>",
      [["search", {"query": "sglang"}], ["get_weather", {"city": "Kyiv"}]], thinking="Two lookups."),
    C("minimaxm1-call-in-think-ignored", "minimax_m1",
      "<think>Not <tool_calls>\n{\"name\": \"shell\", \"arguments\": {\"command\": \"halt\"}}\n</tool_calls> yet.</think>\nWaiting for your go-ahead.",
      [], ["Waiting for your go-ahead."],
      thinking="Not <tool_calls>\n{\"name\": \"shell\", \"arguments\": {\"command\": \"halt\"}}\n</tool_calls> yet."),

    # ================================================================== minimax_m2 (<minimax:tool_call><invoke name=…>)
    C("minimaxm2-two-params-int", "minimax_m2",
      'Looking it up.\n<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="city">Almaty</parameter>\n'
      '<parameter name="days">4</parameter>\n</invoke>\n</minimax:tool_call>',
      [["get_weather", {"city": "Almaty", "days": 4}]], ["Looking it up."]),
    C("minimaxm2-anyof-null-keeps-string", "minimax_m2",
      '<minimax:tool_call><invoke name="set_nickname"><parameter name="nickname">hi</parameter></invoke></minimax:tool_call>',
      [["set_nickname", {"nickname": "hi"}]], tools=NICKNAME_TOOLS,
      note="SGLang issue: anyOf[string,null] turned every value into null"),
    C("minimaxm2-anyof-null-explicit", "minimax_m2",
      '<minimax:tool_call><invoke name="set_nickname"><parameter name="nickname">null</parameter></invoke></minimax:tool_call>',
      [["set_nickname", {"nickname": None}]], tools=NICKNAME_TOOLS),
    C("minimaxm2-unquoted-names", "minimax_m2",
      "<minimax:tool_call>\n<invoke name=get_weather>\n<parameter name=city>Oulu</parameter>\n<parameter name=days>2</parameter>\n</invoke>\n</minimax:tool_call>",
      [["get_weather", {"city": "Oulu", "days": 2}]]),
    C("minimaxm2-two-invokes", "minimax_m2",
      '<minimax:tool_call><invoke name="shell"><parameter name="command">nproc</parameter></invoke>'
      '<invoke name="shell"><parameter name="command">free -m</parameter></invoke></minimax:tool_call>',
      [["shell", {"command": "nproc"}], ["shell", {"command": "free -m"}]]),
    C("minimaxm2-html-in-value", "minimax_m2",
      '<minimax:tool_call><invoke name="write_file"><parameter name="file_path">i.html</parameter>'
      '<parameter name="content"><p>Hi</p></parameter></invoke></minimax:tool_call>',
      [["write_file", {"file_path": "i.html", "content": "<p>Hi</p>"}]]),
    C("minimaxm2-missing-outer-close", "minimax_m2",
      'Listing.<minimax:tool_call><invoke name="shell"><parameter name="command">ls</parameter></invoke>',
      [["shell", {"command": "ls"}]], ["Listing."],
      note="SGLang: truncated block must not leak markup into the text"),
    C("minimaxm2-think-then-call", "minimax_m2",
      "<think>Read the config.</think>\n\n<minimax:tool_call>\n<invoke name=\"read_file\">\n<parameter name=\"file_path\">pyproject.toml</parameter>\n</invoke>\n</minimax:tool_call>",
      [["read_file", {"file_path": "pyproject.toml"}]], thinking="Read the config."),

    # ================================================================== minimax_m3 (]<]minimax[>[ namespace token)
    C("minimaxm3-namespaced", "minimax_m3",
      f'<mm:think>Check the kernel.</mm:think>{MM3}<tool_call>{MM3}<invoke name="shell">{MM3}<command>uname -r{MM3}</command>{MM3}</invoke>{MM3}</tool_call>',
      [["shell", {"command": "uname -r"}]], thinking="Check the kernel."),
    C("minimaxm3-two-params", "minimax_m3",
      f'{MM3}<tool_call>{MM3}<invoke name="get_weather">{MM3}<city>Lviv{MM3}</city>{MM3}<days>3{MM3}</days>{MM3}</invoke>{MM3}</tool_call>',
      [["get_weather", {"city": "Lviv", "days": 3}]]),

    # ================================================================== deepseek_v3 (V3-0324 / R1-0528)
    C("deepseekv3-fenced-json-after-think", "deepseek_v3",
      f"<think>Just one call.</think>\n\n{DS_CALLS_BEGIN}{DS_CALL_BEGIN}function{DS_SEP}get_weather\n```json\n"
      '{"city": "Sendai"}\n```' f"{DS_CALL_END}{DS_CALLS_END}",
      [["get_weather", {"city": "Sendai"}]], thinking="Just one call."),

    # ================================================================== deepseek_v31 (V3.1 / Terminus)
    C("deepseekv31-prose-two-calls", "deepseek_v31",
      f'Let me check both.{DS_CALLS_BEGIN}{DS_CALL_BEGIN}shell{DS_SEP}{{"command": "id"}}{DS_CALL_END}'
      f'{DS_CALL_BEGIN}get_weather{DS_SEP}{{"city": "Nara"}}{DS_CALL_END}{DS_CALLS_END}',
      [["shell", {"command": "id"}], ["get_weather", {"city": "Nara"}]], ["Let me check both."]),
    C("deepseekv31-bare-think-close-then-call", "deepseek_v31",
      f'The user needs the README.</think>{DS_CALLS_BEGIN}{DS_CALL_BEGIN}read_file{DS_SEP}{{"file_path": "README.md"}}{DS_CALL_END}{DS_CALLS_END}',
      [["read_file", {"file_path": "README.md"}]], thinking="The user needs the README.",
      note="thinking mode: the chat template puts <think> in the prompt, the output only closes it"),
    C("deepseekv31-call-quoted-before-bare-think-close", "deepseek_v31",
      f'A call would look like {DS_CALLS_BEGIN}{DS_CALL_BEGIN}shell{DS_SEP}{{"command": "rm -rf /"}}{DS_CALL_END}{DS_CALLS_END} but no.</think>Nothing to run.',
      [], ["Nothing to run."],
      thinking=f'A call would look like {DS_CALLS_BEGIN}{DS_CALL_BEGIN}shell{DS_SEP}{{"command": "rm -rf /"}}{DS_CALL_END}{DS_CALLS_END} but no.',
      note="everything before the bare </think> is reasoning"),
    C("deepseekv31-no-call-markers-stays-text", "deepseek_v31",
      f'{DS_CALLS_BEGIN}shell{DS_SEP}{{"command": "ls"}}{DS_CALLS_END}',
      [], [f'{DS_CALLS_BEGIN}shell{DS_SEP}{{"command": "ls"}}{DS_CALLS_END}'],
      note="vLLM test: begin token without per-call markers is not a call and keeps the text"),

    # ================================================================== deepseek_v32 (DSML)
    C("deepseekv32-string-flags", "deepseek_v32",
      f'<{DSML}function_calls>\n<{DSML}invoke name="get_weather">\n<{DSML}parameter name="city" string="true">Macau</{DSML}parameter>\n'
      f'<{DSML}parameter name="days" string="false">3</{DSML}parameter>\n<{DSML}parameter name="metric" string="false">true</{DSML}parameter>\n'
      f'</{DSML}invoke>\n</{DSML}function_calls>',
      [["get_weather", {"city": "Macau", "days": 3, "metric": True}]]),
    C("deepseekv32-invoke-json-body", "deepseek_v32",
      f'<{DSML}function_calls>\n<{DSML}invoke name="search">\n{{"query": "raft consensus", "limit": 5}}\n</{DSML}invoke>\n</{DSML}function_calls>',
      [["search", {"query": "raft consensus", "limit": 5}]], note="invoke body is a JSON object"),
    C("deepseekv32-plain-tags-with-string-attr", "deepseek_v32",
      '<function_calls>\n<invoke name="read_file">\n<parameter name="file_path" string="true">setup.cfg</parameter>\n</invoke>\n</function_calls>',
      [["read_file", {"file_path": "setup.cfg"}]], note="SGLang DSV3.2: the DSML prefix may be missing"),
    C("deepseekv32-undeclared-parameter", "deepseek_v32",
      f'<{DSML}function_calls>\n<{DSML}invoke name="read_file">\n<{DSML}parameter name="file_path" string="true">data.csv</{DSML}parameter>\n'
      f'<{DSML}parameter name="encoding" string="true">latin-1</{DSML}parameter>\n</{DSML}invoke>\n</{DSML}function_calls>',
      [["read_file", {"file_path": "data.csv", "encoding": "latin-1"}]],
      note="a parameter missing from the schema is kept (the schema filter must not drop it)"),
    C("deepseekv32-mixed-closers", "deepseek_v32",
      f'<{DSML}function_calls>\n<{DSML}invoke name="shell">\n<{DSML}parameter name="command" string="true">whoami</parameter>\n</{DSML}invoke>\n</{DSML}function_calls>',
      [["shell", {"command": "whoami"}]], note="SGLang accepts a DSML opener with a plain </parameter>"),
    C("deepseekv32-object-param", "deepseek_v32",
      f'Searching.\n\n<{DSML}function_calls>\n<{DSML}invoke name="search">\n<{DSML}parameter name="query" string="true">gc pauses</{DSML}parameter>\n'
      f'<{DSML}parameter name="filters" string="false">{{"lang": "java", "year": 2024}}</{DSML}parameter>\n</{DSML}invoke>\n</{DSML}function_calls>',
      [["search", {"query": "gc pauses", "filters": {"lang": "java", "year": 2024}}]], ["Searching."]),
    C("deepseekv32-no-params", "deepseek_v32",
      f'<{DSML}function_calls>\n<{DSML}invoke name="todo_read">\n</{DSML}invoke>\n</{DSML}function_calls>',
      [["todo_read", {}]]),

    # ================================================================== deepseek_v4 (DSML tool_calls wrapper)
    C("deepseekv4-tool-calls-wrapper", "deepseek_v4",
      f'<{DSML}tool_calls>\n<{DSML}invoke name="shell">\n<{DSML}parameter name="command" string="true">date -u</{DSML}parameter>\n</{DSML}invoke>\n</{DSML}tool_calls>',
      [["shell", {"command": "date -u"}]]),
    C("deepseekv4-json-body", "deepseek_v4",
      f'<{DSML}tool_calls>\n<{DSML}invoke name="get_weather">\n{{"city": "Izmir", "days": 2}}\n</{DSML}invoke>\n</{DSML}tool_calls>',
      [["get_weather", {"city": "Izmir", "days": 2}]]),

    # ================================================================== kimi_k2 (K2 / K2-Thinking / K2.5)
    C("kimik2-prose-call", "kimi_k2",
      "I'll open it.<|tool_calls_section_begin|><|tool_call_begin|>functions.read_file:0<|tool_call_argument_begin|>"
      '{"file_path": "src/index.ts"}<|tool_call_end|><|tool_calls_section_end|>',
      [["read_file", {"file_path": "src/index.ts"}]], ["I'll open it."]),
    C("kimik2-two-calls", "kimi_k2",
      "<|tool_calls_section_begin|><|tool_call_begin|>functions.shell:0<|tool_call_argument_begin|>{\"command\": \"pwd\"}<|tool_call_end|>"
      "<|tool_call_begin|>functions.get_weather:1<|tool_call_argument_begin|>{\"city\": \"Osaka\"}<|tool_call_end|><|tool_calls_section_end|>",
      [["shell", {"command": "pwd"}], ["get_weather", {"city": "Osaka"}]]),
    C("kimik2-section-inside-think", "kimi_k2",
      "<think>I need the file contents.<|tool_calls_section_begin|><|tool_call_begin|>functions.read_file:0<|tool_call_argument_begin|>"
      '{"file_path": "app.yaml"}<|tool_call_end|><|tool_calls_section_end|>',
      [["read_file", {"file_path": "app.yaml"}]], thinking="I need the file contents.",
      note="SGLang KimiK2 reasoning parser: the tool section may start before </think>"),
    C("kimik2-name-without-prefix", "kimi_k2",
      "<|tool_calls_section_begin|><|tool_call_begin|>todo_write:3<|tool_call_argument_begin|>{\"content\": \"- [ ] ship\"}<|tool_call_end|><|tool_calls_section_end|>",
      [["todo_write", {"content": "- [ ] ship"}]]),

    # ================================================================== kimi_k3 (XTML channels)
    C("kimik3-response-and-tools", "kimi_k3",
      f"{KO}think{KS}Need the weather.{KC}think{KS}{KO}response{KS}On it.{KC}response{KS}"
      f'{KO}tools{KS}{KO}call tool="get_weather" index="1"{KS}{KO}argument key="city" type="string"{KS}Lima{KC}argument{KS}'
      f'{KO}argument key="days" type="integer"{KS}2{KC}argument{KS}{KC}call{KS}{KC}tools{KS}',
      [["get_weather", {"city": "Lima", "days": 2}]], ["On it."], thinking="Need the weather."),
    C("kimik3-object-argument", "kimi_k3",
      f'{KO}tools{KS}{KO}call tool="search" index="1"{KS}{KO}argument key="query" type="string"{KS}wal mode{KC}argument{KS}'
      f'{KO}argument key="filters" type="object"{KS}{{"db": "sqlite"}}{KC}argument{KS}{KC}call{KS}{KC}tools{KS}',
      [["search", {"query": "wal mode", "filters": {"db": "sqlite"}}]]),

    # ================================================================== k2_horizon (IFM)
    C("k2horizon-ifm-xml", "k2_horizon",
      "<ifm|tool_calls><ifm|tool_call>get_weather<ifm|arg_key>city</ifm|arg_key><ifm|arg_value>Cusco</ifm|arg_value></ifm|tool_call></ifm|tool_calls>",
      [["get_weather", {"city": "Cusco"}]]),
]
