"""The service's logging: one stderr handler for the project's loggers, text or JSON lines."""

from __future__ import annotations

import logging
import os
import sys

import orjson


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


class JsonLineFormatter(logging.Formatter):
    """LOG_FORMAT=json: every line is one JSON object that log shippers can parse as it is."""

    def format(self, record: logging.LogRecord) -> str:
        """Time, level and logger, plus the request's fields or the message."""
        payload: dict = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name}
        message = record.getMessage()
        if record.name == "loadbalancer.access" and message.startswith("{"):
            payload.update(orjson.loads(message))  # RequestRecord already wrote its fields as JSON
        else:
            payload["message"] = message
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload).decode()
