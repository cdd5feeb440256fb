"""`flask --app app check-config` and `flask --app app probe` as an operator runs them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from support.fake_backend import FakeBackend, status
from support.lb_process import REPO_ROOT, SCRUBBED_ENV, anthropic_provider, providers_config

SECRET = "sk-from-the-env-file-0123456789"


def run_flask(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`flask --app app ARGS` from the repository root, without real keys or a PROVIDERS_FILE."""
    environ = {name: value for name, value in os.environ.items()
               if name not in SCRUBBED_ENV and name != "PROVIDERS_FILE"}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=REPO_ROOT,
                          env=environ, capture_output=True, text=True, timeout=60)


def write_config(tmp_path: Path, data: Any, name: str = "providers.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


def test_check_config_of_a_path_never_reads_the_default_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, providers_config(anthropic_provider("mine", "http://127.0.0.1:1")))
    result = run_flask("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert "mine: anthropic enabled" in result.stdout and "1 of 1 providers enabled" in result.stdout
    # The shipped providers.json names ANTHROPIC_API_KEY and OPENROUTER_API_KEY, unset here.
    assert "openrouter" not in result.stdout + result.stderr
    assert "ANTHROPIC_API_KEY" not in result.stdout + result.stderr


def test_check_config_fails_when_no_provider_is_enabled_and_an_env_file_enables_it(tmp_path: Path) -> None:
    entry = anthropic_provider("keyed", "http://127.0.0.1:1", api_key="${LB_TEST_PROVIDER_KEY}")
    path = write_config(tmp_path, providers_config(entry))
    without = run_flask("check-config", str(path))
    assert without.returncode == 1
    assert "keyed: anthropic disabled (environment variable LB_TEST_PROVIDER_KEY is not set)" in without.stdout
    assert "no provider is enabled" in without.stderr

    env_file = tmp_path / "env"
    env_file.write_text(f"# as systemd reads it\nLB_TEST_PROVIDER_KEY='{SECRET}'\n")
    with_file = run_flask("check-config", "--env-file", str(env_file), str(path))
    assert with_file.returncode == 0, with_file.stderr
    assert "keyed: anthropic enabled" in with_file.stdout
    assert SECRET not in with_file.stdout + with_file.stderr


def test_check_config_suggests_the_nearest_key_and_warns_about_bare_variables(tmp_path: Path) -> None:
    typo = write_config(tmp_path, providers_config(anthropic_provider("p", "http://127.0.0.1:1",
                                                                      modles=["claude-test"])))
    result = run_flask("check-config", str(typo))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"{typo}: providers[0].modles: unknown key 'modles'; did you mean 'models'? "
                           "allowed keys: api_key, base_url,")

    bare = write_config(tmp_path, providers_config(anthropic_provider("p", "http://127.0.0.1:1",
                                                                      api_key="$ANTHROPIC_API_KEY")), "bare.json")
    warned = run_flask("check-config", str(bare))
    assert warned.returncode == 0
    assert "warning:" in warned.stderr and "'$ANTHROPIC_API_KEY' is taken literally" in warned.stderr


def test_check_config_reports_a_trailing_comma_on_its_own_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, '{\n  "providers": [\n    {"name": "a", "type": "anthropic",\n'
                                  '     "base_url": "http://127.0.0.1:1"},\n  ]\n}\n')
    result = run_flask("check-config", str(path))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"{path}: $: invalid JSON at line 4 column 39: trailing comma before ']'")


def test_probe_of_an_invalid_file_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"providers": [{"name": "x", "type": "nope", "base_url": "http://h"}]})
    result = run_flask("probe", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"{path}: providers[0].type: unknown provider type 'nope'; allowed: anthropic, openai")


@pytest.mark.integration
@pytest.mark.parametrize(("models_status", "usable"), [(200, True), (404, False), (500, False)])
def test_probe_counts_only_a_2xx_as_usable(tmp_path: Path, fake_backend: Callable[..., FakeBackend],
                                           models_status: int, usable: bool) -> None:
    backend = fake_backend()
    if models_status != 200:
        backend.set_default_for("/v1/models", status(models_status))
    entry = anthropic_provider("p", backend.url, api_key="${LB_TEST_PROVIDER_KEY}")
    env_file = tmp_path / "env"
    env_file.write_text(f"LB_TEST_PROVIDER_KEY={SECRET}\n")
    result = run_flask("probe", "--env-file", str(env_file), str(write_config(tmp_path, providers_config(entry))))
    assert result.returncode == (0 if usable else 1), result.stdout + result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert header.split()[:5] == ["provider", "reachable", "auth", "latency_ms", "usable"]
    cells = row.split()
    assert cells[0] == "p" and cells[1] == "yes" and cells[4] == ("yes" if usable else "no")
    if not usable:
        assert f"HTTP {models_status}" in row and cells[2] == "-"  # a 404/500 proves nothing about the key
    assert [request.headers.get("x-api-key") for request in backend.requests] == [SECRET]
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.integration
def test_the_service_logs_the_same_warnings_at_start(lb: Callable[..., Any]) -> None:
    entry = anthropic_provider("p", "http://127.0.0.1:1", api_key="$LB_TEST_PROVIDER_KEY")
    service = lb(providers_config(entry))
    log = service.wait_for_log("configuration warning")
    assert log.count("'$LB_TEST_PROVIDER_KEY' is taken literally") == 1  # said once, by the master
