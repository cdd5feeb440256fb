"""Re-reads `providers.json` when it changes, without a restart.

A small polling thread per worker (a greenlet under gevent): it compares the file's
modification time, size and inode with those of the version last loaded, and asks the
`RuntimeHolder` to reload when they differ. The holder validates first and keeps the running
configuration if the new file is invalid, so a half-written or broken file never takes the
service down; such a file is retried at every poll until it loads.
"""

from __future__ import annotations

import logging
import os
import threading

from loadbalancer.runtime import ReloadOutcome, RuntimeHolder

DEFAULT_POLL_SECONDS = 2.0
log = logging.getLogger("loadbalancer")


def file_signature(path: str) -> tuple[int, int, int] | None:
    """What identifies a version of the file; None when it cannot be read."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)


class ConfigWatcher:
    """Polls one file and reloads the holder when it changes."""

    def __init__(self, path: str, holder: RuntimeHolder, poll_seconds: float | None = None) -> None:
        self.path = path
        self.holder = holder
        self.poll_seconds = poll_seconds or float(os.environ.get("LB_CONFIG_POLL_SECONDS", DEFAULT_POLL_SECONDS))
        self._signature = file_signature(path)  # the version the running configuration came from
        self._rejected_signature: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="config-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()

    def check_once(self) -> bool:
        """Reload if the file changed since it was last read; True when a new config was applied.

        A version that could not be loaded (unreadable, invalid) is not taken as read: it is
        tried again at every poll, so a `chmod` that makes it readable, which changes neither
        mtime, size nor inode, still brings it in. Its rejection is logged once.
        """
        signature = file_signature(self.path)
        if signature is None or signature == self._signature:
            return False
        outcome = self.holder.try_reload(self.path, log_rejection=signature != self._rejected_signature)
        if outcome is ReloadOutcome.REJECTED:
            self._rejected_signature = signature
            return False
        self._signature = signature
        self._rejected_signature = None
        return outcome is ReloadOutcome.APPLIED

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check_once()
            except OSError as err:  # e.g. the file vanished between stat and open
                log.error("config watch: cannot read %s: %s", self.path, err)
