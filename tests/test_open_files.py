"""The open-file limit under a low `ulimit -n`: the service raises its soft limit to the hard one.

gunicorn starts under `prlimit` with a low soft and a higher hard limit, as under systemd's
default LimitNOFILE; the workers' /proc/<pid>/limits show what they really got.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest
import requests

from support.fake_backend import FakeBackend
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (Debian's util-linux)")]

CLIENT_TIMEOUT = 10.0


class LimitedLoadBalancer(LoadBalancerProcess):
    """gunicorn started with RLIMIT_NOFILE set to soft:hard."""

    def __init__(self, *args, soft: int, hard: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.soft, self.hard = soft, hard

    def command(self) -> list[str]:
        """prlimit runs gunicorn itself (exec), so the master keeps its pid."""
        return ["prlimit", f"--nofile={self.soft}:{self.hard}", "--", *super().command()]


def open_file_limits(pid: int) -> tuple[int, int]:
    """The soft and hard RLIMIT_NOFILE of a process, from /proc."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open-file limit in /proc/{pid}/limits")


def worker_pid(lb: LoadBalancerProcess) -> int:
    """The pid of the worker that answers GET /."""
    return requests.get(f"{lb.url}/", timeout=CLIENT_TIMEOUT).json()["pid"]


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    """An Anthropic fake backend."""
    with FakeBackend() as fake:
        yield fake


def test_a_low_soft_limit_is_raised_to_the_hard_one_once_for_all_workers(backend: FakeBackend,
                                                                         tmp_path: Path) -> None:
    with LimitedLoadBalancer(providers_config(anthropic_provider("primary", backend.url)), workers=2,
                             env={"LB_WORKER_CONNECTIONS": "100"}, workdir=tmp_path, soft=256, hard=4096) as lb:
        assert open_file_limits(lb.pid) == (4096, 4096)
        assert open_file_limits(worker_pid(lb)) == (4096, 4096)
        log = lb.log_text()
        assert log.count("open-file limit raised from 256 to 4096") == 1
        assert "open-file limit 4096 is below" not in log


def test_a_hard_limit_below_what_the_workers_need_is_warned_about(backend: FakeBackend, tmp_path: Path) -> None:
    with LimitedLoadBalancer(providers_config(anthropic_provider("primary", backend.url)), workdir=tmp_path,
                             soft=512, hard=512) as lb:  # 2000 connections per worker need ~4,500
        assert "open-file limit 512 is below" in lb.log_text()
        assert "LB_WORKER_CONNECTIONS" in lb.log_text()
        assert open_file_limits(worker_pid(lb)) == (512, 512)
