"""gunicorn.conf.py's worker hook: what a worker loaded at start is left out of full collections."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# In a child: the settings file patches the process for gevent, which this test process must not get.
CHECK = """
import gc, runpy
hooks = runpy.run_path("gunicorn.conf.py")
gc.unfreeze()
before = gc.get_freeze_count()
hooks["post_worker_init"](None)
print(before, gc.get_freeze_count())
"""


def test_a_worker_freezes_what_it_loaded_once_the_app_is_loaded() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split())
    assert before == 0 and after > 1000  # the modules gunicorn.conf.py and its imports loaded
