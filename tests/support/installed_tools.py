"""Where the real clients the suite drives are installed (.ci/run puts them under .tools)."""
from __future__ import annotations

import os
import shutil

from support.lb_process import REPO_ROOT


def installed_tool(env_variable: str, name: str) -> str | None:
    """An executable: the path in $env_variable, the copy in .tools/node_modules/.bin, or one on PATH."""
    candidates = [os.environ.get(env_variable), str(REPO_ROOT / ".tools/node_modules/.bin" / name), shutil.which(name)]
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)
