"""deploy/anthropic-loadbalancer.service: valid for systemd, hardened, and its directories used.

Checked offline: `systemd-analyze verify` on a copy whose paths point at this checkout (it
insists that ExecStart exists), and `systemd-analyze security --offline=true` for the rating.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import requests

from support.fake_backend import FakeBackend
from support.lb_process import REPO_ROOT, LoadBalancerProcess, anthropic_provider, providers_config

UNIT = REPO_ROOT / "deploy" / "anthropic-loadbalancer.service"
INSTALL_DIR = "/opt/anthropic-loadbalancer"
MAX_EXPOSURE = 3.0
EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+)")


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd; .ci/run does): unit not checked")
    return found


def local_copy(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with its install paths pointing at this checkout and its virtualenv."""
    text = UNIT.read_text() if text is None else text
    gunicorn = Path(sys.executable).parent / "gunicorn"
    text = text.replace(f"{INSTALL_DIR}/.venv/bin/gunicorn", str(gunicorn)).replace(INSTALL_DIR, str(REPO_ROOT))
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    return copy


def verify(tmp_path: Path, text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([systemd_analyze(), "verify", str(local_copy(tmp_path, text))],
                          capture_output=True, text=True, timeout=60)


def test_the_unit_verifies_cleanly(tmp_path: Path) -> None:
    result = verify(tmp_path)
    assert result.returncode == 0 and (result.stdout + result.stderr).strip() == "", result.stdout + result.stderr


def test_verify_would_catch_a_mistake_in_the_unit(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("ProtectProc=invisible", "ProtectProc=invisible\nProtectKernal=true")
    result = verify(tmp_path, broken)
    assert "Unknown key 'ProtectKernal'" in result.stdout + result.stderr


def test_the_unit_is_rated_3_or_better_by_systemd_analyze_security(tmp_path: Path) -> None:
    result = subprocess.run([systemd_analyze(), "security", "--offline=true", "--no-pager", str(local_copy(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    found = EXPOSURE.search(result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


def unit_environment(state: Path, runtime: Path) -> dict[str, str]:
    """The unit's Environment= lines, with %S and %t as systemd expands them."""
    environment = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            name, _, value = line[len("Environment="):].partition("=")
            environment[name] = value.replace("%S", str(state)).replace("%t", str(runtime))
    return environment


@pytest.mark.integration
def test_the_service_uses_the_units_state_and_runtime_directories(
        tmp_path: Path, fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    state, runtime = tmp_path / "var-lib", tmp_path / "run"
    (state / "anthropic-loadbalancer").mkdir(parents=True)  # StateDirectory= and RuntimeDirectory=
    (runtime / "anthropic-loadbalancer").mkdir(parents=True)
    environment = unit_environment(state, runtime)
    assert environment["LB_STATE_DIR"] == str(state / "anthropic-loadbalancer")
    environment.pop("PROVIDERS_FILE")  # the test's own file
    backend = fake_backend()
    config = providers_config(anthropic_provider("up", backend.url))
    config["health"] = {"interval": 0.5, "timeout": 1}
    service = lb(config, env=environment, workers=2)
    message = {"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    assert requests.post(f"{service.url}/v1/messages", json=message, timeout=10).status_code == 200
    assert "loadbalancer_requests_total" in requests.get(f"{service.url}/metrics", timeout=5).text
    deadline = time.monotonic() + 10
    state_dir = state / "anthropic-loadbalancer"
    while time.monotonic() < deadline and not list((state_dir / "timeline").glob("*.json")):
        time.sleep(0.2)
    assert list((state_dir / "provider-state").iterdir()) and list((state_dir / "timeline").glob("*.json"))
    assert list((runtime / "anthropic-loadbalancer" / "prometheus").glob("*.db"))
    assert not (state_dir / "prometheus").exists()
