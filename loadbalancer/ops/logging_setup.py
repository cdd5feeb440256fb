"""The service's logging: one stderr handler for the project's loggers, text or JSON lines,
and the filter that takes every configured secret out of each line before it is written."""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable

import orjson

from loadbalancer.secrets import SecretScrubber

# Besides the project's own handler: gunicorn's error log, which prints what escapes a worker.
SCRUBBED_FOREIGN_LOGGERS = ("gunicorn.error",)
_plain_formatter = logging.Formatter()


def configure_logging() -> None:
    """One handler to stderr for the project's loggers (gunicorn keeps its own)."""
    logger = logging.getLogger("loadbalancer")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("LOG_FORMAT", "").lower() == "json":
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    logger.propagate = False


class SecretLogFilter(logging.Filter):
    """Scrubs a record's message and traceback with the running configuration's scrubber."""

    def __init__(self, scrubber: Callable[[], SecretScrubber]) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the message by its scrubbed text; never drops a record."""
        scrubber = self.scrubber()
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed call: the handler reports it, with no argument in it
        record.msg, record.args = scrubber.text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrubber.text(_plain_formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = scrubber.text(record.stack_info)
        return True


def install_secret_filter(scrubber: Callable[[], SecretScrubber]) -> None:
    """Scrub every line the project's handler and gunicorn's error log write (one filter each).

    A later app in the same process (tests build many) takes over the filter already there.
    """
    loggers = [logging.getLogger("loadbalancer")] + [logging.getLogger(name) for name in SCRUBBED_FOREIGN_LOGGERS]
    for handler in (handler for logger in loggers for handler in logger.handlers):
        existing = [item for item in handler.filters if isinstance(item, SecretLogFilter)]
        if existing:
            existing[0].scrubber = scrubber
        else:
            handler.addFilter(SecretLogFilter(scrubber))


class JsonLineFormatter(logging.Formatter):
    """LOG_FORMAT=json: every line is one JSON object that log shippers can parse as it is."""

    def format(self, record: logging.LogRecord) -> str:
        """Time, level and logger, plus the request's fields or the message."""
        payload: dict = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name}
        message = record.getMessage()
        try:
            fields = orjson.loads(message) if record.name == "loadbalancer.access" else None
        except orjson.JSONDecodeError:
            fields = None
        if isinstance(fields, dict):
            payload.update(fields)  # RequestRecord already wrote its fields as JSON
        else:
            payload["message"] = message
        if record.exc_info or record.exc_text:
            payload["exception"] = record.exc_text or self.formatException(record.exc_info)
        return orjson.dumps(payload).decode()
