"""Request-sized buffers reuse the C heap: a worker stops faulting in fresh pages for every large body.

Each check runs in a child process, since malloc's settings are the process's for good.
"""
from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Receive-and-join a 1 MB body as the service does, 200 times; print the minor page faults of the last 100.
WORKLOAD = """
import resource, sys
sys.path.insert(0, {root!r})
from loadbalancer.serving.large_buffers import keep_large_buffers_in_heap
print(keep_large_buffers_in_heap() if {tuned} else "untuned")
def one_request():
    parts = [bytes(256 * 1024) for _ in range(4)]
    body = b"".join(parts)
    del parts
    return len(body) + len(body[1:] + b"x")
for _ in range(100):
    one_request()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    one_request()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's settings are glibc's")


def faults_of(tuned: bool) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", WORKLOAD.format(root=str(ROOT), tuned=tuned)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer, faults = done.stdout.split()
    return answer, int(faults)


@glibc_only
def test_large_request_buffers_are_reused_instead_of_faulted_in_again() -> None:
    untuned, untuned_faults = faults_of(False)
    answer, tuned_faults = faults_of(True)
    assert answer == "True"  # glibc took both settings
    assert untuned_faults > 10_000  # ~4 MB of fresh pages a request: 256 faults a MB
    assert tuned_faults < 100


HOOK_THEN_WORKLOAD = """
import runpy
hooks = runpy.run_path("gunicorn.conf.py")
hooks["post_worker_init"](None)
""" + WORKLOAD.replace("print(keep_large_buffers_in_heap() if {tuned} else \"untuned\")", "print(\"hook\")")


@glibc_only
def test_a_worker_tunes_malloc_when_it_starts() -> None:
    # In a child: the settings file patches the process for gevent, which this test process must not get.
    done = subprocess.run([sys.executable, "-c", HOOK_THEN_WORKLOAD.format(root=str(ROOT))], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer, faults = done.stdout.split()[-2:]
    assert answer == "hook" and int(faults) < 100
