"""Which build is running: the git revision of the checkout, for `loadbalancer_build_info`.

Read from the files under `.git` rather than by running git: the service may run as a user
git distrusts for the checkout (its "dubious ownership" check) or without git installed.
`$LB_BUILD_REVISION` wins, for installs that are not a git checkout.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

REVISION_ENV = "LB_BUILD_REVISION"
UNKNOWN = "unknown"
SHORT_REVISION = 12


def python_version() -> str:
    """The interpreter's version, e.g. 3.11.2."""
    return platform.python_version()


def git_revision(checkout: Path) -> str:
    """The checkout's commit (12 hex digits), `$LB_BUILD_REVISION`, or "unknown"."""
    configured = os.environ.get(REVISION_ENV, "").strip()
    if configured:
        return configured
    try:
        git_dir = _git_dir(checkout / ".git")
        head = (git_dir / "HEAD").read_text().strip()
        commit = _resolve(git_dir, head[len("ref: "):]) if head.startswith("ref: ") else head
    except OSError:
        return UNKNOWN
    return commit[:SHORT_REVISION] if commit else UNKNOWN


def _git_dir(dot_git: Path) -> Path:
    """`.git` itself, or the directory a worktree's `.git` file points to."""
    if dot_git.is_file():
        pointer = dot_git.read_text().strip()
        if pointer.startswith("gitdir: "):
            return (dot_git.parent / pointer[len("gitdir: "):]).resolve()
    return dot_git


def _resolve(git_dir: Path, ref: str) -> str | None:
    """The commit a ref names: a loose ref file, or a line of packed-refs (shared by worktrees)."""
    common = git_dir
    if (git_dir / "commondir").is_file():
        common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
    for directory in (git_dir, common):
        loose = directory / ref
        if loose.is_file():
            return loose.read_text().strip()
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            commit, _, name = line.partition(" ")
            if name == ref:
                return commit
    return None
