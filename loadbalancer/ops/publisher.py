"""What each worker publishes every few seconds for the others to read.

Only the worker itself knows its provider states (as gauges for /metrics) and its latest
requests (the timeline file the status page merges); a small daemon thread (a greenlet under
gevent) hands them over every `PUBLISH_SECONDS`, so whichever worker answers a scrape or a page
shows every worker's share, at most that many seconds old.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

PUBLISH_SECONDS = 2.0
log = logging.getLogger("loadbalancer")


class Publisher:
    """Calls every task once per period until stopped; a failing task is logged, not fatal."""

    def __init__(self, tasks: list[Callable[[], None]], period: float = PUBLISH_SECONDS) -> None:
        self._tasks = tasks
        self._period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="ops-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()

    def publish_now(self) -> None:
        """One round of every task."""
        for task in self._tasks:
            try:
                task()
            except OSError as err:  # a full disk or a removed state dir must not stop the others
                log.error("publishing %s failed: %s", getattr(task, "__name__", task), err)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.publish_now()
