"""Codex CLI itself, through the load balancer's Responses front door, against a fake Anthropic backend.

The real `codex` CLI (npm `@openai/codex`, pinned in `.ci/run`) runs a one-tool task with
`codex exec`: it posts `/v1/responses` with its own tools (an `exec_command` shell, a namespace
group, a hosted web_search), runs the `exec_command` call the model made, and sends the output
back. That is Codex's whole agent loop: the Responses stream events it acts on, function_call
items, function_call_output turns. The second run asks for reasoning, so the model's thinking
must travel to Codex as a reasoning item and come back as the same signed thinking block.

Nothing can leave the machine: plugins and apps (which call github.com and chatgpt.com at
start) are disabled, every proxy variable points at a closed loopback port, and CODEX_HOME and
HOME are temporary directories. Skipped with a message when the CLI is not installed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from support.fake_backend import FAKE_SIGNATURE, FakeBackend, anthropic_stream, closed_port
from support.installed_tools import installed_tool
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config

pytestmark = pytest.mark.integration

CODEX_RUN_TIMEOUT = 180
TASK = "create a file hello.txt containing hi"
SHELL_CALL = ("exec_command", {"cmd": "printf hi > hello.txt"})
FINAL_TEXT = "Created hello.txt containing hi."


@pytest.fixture(scope="module")
def codex() -> str:
    binary = installed_tool("CODEX_BIN", "codex")
    if binary is None:
        pytest.skip("Codex CLI is not installed: npm install --prefix .tools @openai/codex@0.171.0 "
                    "(as .ci/run does) to run the Codex test")
    return binary


@pytest.fixture
def backend(fake_backend: Callable[..., FakeBackend]) -> FakeBackend:
    return fake_backend()


def codex_config(lb: LoadBalancerProcess) -> str:
    """config.toml: the load balancer as a custom Responses provider; no retries to hide failures."""
    return f'''model = "claude-sonnet-4-5"
model_provider = "lb"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.lb]
name = "lb"
base_url = "{lb.url}/v1"
wire_api = "responses"
env_key = "LB_KEY"
request_max_retries = 0
stream_max_retries = 0
'''


def run_codex(codex: str, lb: LoadBalancerProcess, home: Path, *options: str) -> subprocess.CompletedProcess:
    """`codex exec` on the task in home/work, offline but for the load balancer."""
    codex_home, workdir = home / "codex_home", home / "work"
    codex_home.mkdir()
    workdir.mkdir()
    (codex_home / "config.toml").write_text(codex_config(lb))
    nowhere = f"http://127.0.0.1:{closed_port()}"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "CODEX_HOME": str(codex_home),
           "LB_KEY": "codex-client-key-never-forwarded", "NO_PROXY": "127.0.0.1,localhost",
           **{name: nowhere for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy")}}
    command = [codex, "exec", "--skip-git-repo-check", "--ephemeral", "--disable", "plugins", "--disable", "apps",
               "-C", str(workdir), *options, "--", TASK]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=CODEX_RUN_TIMEOUT,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("thinking", [False, True], ids=["plain", "with-reasoning"])
def test_codex_runs_a_shell_call_through_the_load_balancer(
        codex: str, backend: FakeBackend, tmp_path: Path, thinking: bool) -> None:
    backend.queue(anthropic_stream(["I will create it."], tool_uses=[SHELL_CALL],
                                   thinking="**Planning** the file" if thinking else None),
                  anthropic_stream([FINAL_TEXT]))
    options = ("-c", "model_reasoning_effort=medium") if thinking else ()
    with LoadBalancerProcess(providers_config(anthropic_provider("anthropic-fake", backend.url)),
                             workdir=tmp_path / "lb") as lb:
        completed = run_codex(codex, lb, tmp_path, *options)
        log = lb.log_text()
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "work" / "hello.txt").read_text() == "hi"
    assert FINAL_TEXT in completed.stdout
    first, second = [request.json for request in backend.requests_to("/v1/messages")]
    assert {tool["name"] for tool in first["tools"]} >= {"exec_command", "multi_agent_v1__close_agent"}
    assert ("thinking" in first) == thinking
    assistant, results = second["messages"][-2]["content"], second["messages"][-1]["content"]
    expected = ["thinking", "text", "tool_use"] if thinking else ["text", "tool_use"]
    assert [block["type"] for block in assistant] == expected
    if thinking:
        assert assistant[0]["signature"] == FAKE_SIGNATURE
    assert results[0]["type"] == "tool_result" and results[0]["tool_use_id"] == assistant[-1]["id"]
    assert "exited with code 0" in str(results[0]["content"])
    # The service logged both turns (logfmt: method=POST path=/v1/responses) and what it dropped.
    assert log.count("method=POST path=/v1/responses") == 2 and "dropped_tools=web_search" in log
    assert "codex-client-key-never-forwarded" not in log
