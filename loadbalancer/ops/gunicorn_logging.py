"""gunicorn's own log lines in the service's format (`logger_class` in gunicorn.conf.py).

gunicorn writes its lines (booting, worker exits, timeouts) through its own handlers with a
format of its own; this keeps its handlers and settings but gives them the service's
formatter, so with LOG_FORMAT=json every line of the process is JSON.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from loadbalancer.ops.logging_setup import line_formatter


class GunicornLogger(Logger):
    """gunicorn's logger with the service's line format (JSON or logfmt, UTC times)."""

    def setup(self, cfg) -> None:
        """gunicorn's setup, then the service's formatter on every handler it made."""
        super().setup(cfg)
        formatter = line_formatter()
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(formatter)
