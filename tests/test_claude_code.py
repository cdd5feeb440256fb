"""Claude Code itself, through the load balancer, against fake backends on 127.0.0.1.

The real `claude` CLI (npm `@anthropic-ai/claude-code`, pinned in `.ci/run`) runs a one-tool
task in print mode: it asks the model, runs the `Read` tool the model called, and sends the
result back. That is the whole agent loop of a real client: strict SSE parsing, tool_use
blocks, tool_result turns, `?beta=true`, its many beta headers. It runs twice: against an
Anthropic backend with a native tool call, and against an OpenAI-compatible backend that
writes the call as text (Hermes `<tool_call>`), which the load balancer must turn into a
`tool_use` block for Claude Code to act on it.

Skipped with a message when the CLI is not installed (see `.ci/run` and the README).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from support.fake_backend import FakeBackend, anthropic_stream, openai_stream
from support.installed_tools import installed_tool
from support.lb_process import LoadBalancerProcess, anthropic_provider, openai_provider, providers_config

pytestmark = pytest.mark.integration

CLAUDE_RUN_TIMEOUT = 120
SECRET_LINE = "the answer is 42"


@pytest.fixture(scope="module")
def claude() -> str:
    binary = installed_tool("CLAUDE_CODE_BIN", "claude")
    if binary is None:
        pytest.skip("Claude Code is not installed: npm install --prefix .tools "
                    "@anthropic-ai/claude-code (as .ci/run does) to run the real-client test")
    return binary


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A home directory for Claude Code with one file for its Read tool."""
    (tmp_path / "notes.txt").write_text(SECRET_LINE + "\n")
    return tmp_path


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    started = FakeBackend().start()
    yield started
    started.stop()


def run_claude(claude: str, lb: LoadBalancerProcess, workspace: Path) -> dict:
    """`claude -p` with the load balancer as its API; the parsed JSON result."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workspace),
           "ANTHROPIC_BASE_URL": lb.url, "ANTHROPIC_API_KEY": "sk-ant-client-key-never-forwarded",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"}
    completed = subprocess.run(
        [claude, "-p", "What does notes.txt say?", "--output-format", "json", "--allowedTools", "Read"],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=CLAUDE_RUN_TIMEOUT)
    assert completed.returncode == 0, completed.stderr[-2000:] + completed.stdout[-2000:]
    return json.loads(completed.stdout)


def tool_results_sent(backend: FakeBackend) -> list[str]:
    """The text of every tool_result block Claude Code sent back to the backend."""
    texts = []
    for request in backend.requests_to("/v1/messages", "/v1/chat/completions", "/chat/completions"):
        for message in (request.json or {}).get("messages", []):
            if message.get("role") == "tool":  # OpenAI dialect
                texts.append(str(message.get("content")))
            content = message.get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    texts.append(json.dumps(block.get("content")))
    return texts


def test_claude_code_runs_a_native_tool_call_through_the_load_balancer(
        claude: str, backend: FakeBackend, workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    backend.queue(anthropic_stream(["Let me read it."],
                                   tool_uses=[("Read", {"file_path": str(workspace / "notes.txt")})]),
                  anthropic_stream(["It says: ", SECRET_LINE]))
    with LoadBalancerProcess(providers_config(anthropic_provider("anthropic-fake", backend.url)),
                             workdir=tmp_path_factory.mktemp("cc-lb")) as lb:
        result = run_claude(claude, lb, workspace)
        log = lb.log_text()
    assert result["is_error"] is False
    assert SECRET_LINE in result["result"]
    assert any(SECRET_LINE in text for text in tool_results_sent(backend))
    requests_seen = backend.requests_to("/v1/messages")
    assert len(requests_seen) == 2
    assert all(r.headers["x-api-key"] == "sk-test-anthropic-fake" for r in requests_seen)
    assert "sk-ant-client-key-never-forwarded" not in log


def test_claude_code_acts_on_a_tool_call_an_open_model_wrote_as_text(
        claude: str, backend: FakeBackend, workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    call = json.dumps({"name": "Read", "arguments": {"file_path": str(workspace / "notes.txt")}})
    backend.queue(openai_stream(["I will read the file.\n", "<tool_", "call>\n", call[:20], call[20:],
                                 "\n</tool_call>"]),
                  openai_stream(["It says: ", SECRET_LINE]))
    config = providers_config(openai_provider("open-model", backend.url + "/v1", models={"*": "qwen3"}))
    with LoadBalancerProcess(config, workdir=tmp_path_factory.mktemp("cc-lb-text")) as lb:
        result = run_claude(claude, lb, workspace)
        log = lb.log_text()
    assert result["is_error"] is False
    assert SECRET_LINE in result["result"]
    assert any(SECRET_LINE in text for text in tool_results_sent(backend))
    assert "text_tool_calls=parsed:1" in log
