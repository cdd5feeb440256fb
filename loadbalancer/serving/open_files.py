"""The open-file limit: raised to the hard limit at start, and checked against what a worker needs.

Every connection a worker serves holds two file descriptors (the client's socket and the
provider's), beside the listening socket, pipes, logs and metrics files. Under systemd's
default soft limit of 1024, 700 concurrent streams ran out (`EMFILE` in accept and in the
metrics files). The unit sets `LimitNOFILE=65536`; gunicorn's master raises its soft limit
to the hard one before it forks the workers, which inherit it.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from loadbalancer.serving.worker import REFUSALS_IN_FLIGHT

FILES_PER_CONNECTION = 2  # the client's socket and the provider's
FILES_BESIDE_CONNECTIONS = 64  # listening socket, pipes, log, metrics and state files, providers.json
KERNEL_MAXIMUM_FILE = "/proc/sys/fs/nr_open"  # the highest a limit may be set when the hard one is unlimited


@dataclass(frozen=True)
class OpenFileLimit:
    """The soft limit before and after `raise_open_file_limit`, and the hard one."""

    before: int
    after: int
    hard: int

    @property
    def raised(self) -> bool:
        """True when the soft limit went up."""
        return self.after > self.before


def raise_open_file_limit() -> OpenFileLimit:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (what a process may do alone)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else _kernel_maximum(soft)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return OpenFileLimit(soft, soft, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return OpenFileLimit(soft, soft, hard)  # a sandbox refused: keep what we have
    return OpenFileLimit(soft, target, hard)


def files_needed_per_worker(connection_limit: int) -> int:
    """About how many descriptors a worker uses with every connection busy and 503s being written."""
    return FILES_PER_CONNECTION * connection_limit + REFUSALS_IN_FLIGHT + FILES_BESIDE_CONNECTIONS


def _kernel_maximum(fallback: int) -> int:
    try:
        with open(KERNEL_MAXIMUM_FILE) as file:
            return int(file.read())
    except (OSError, ValueError):
        return fallback
