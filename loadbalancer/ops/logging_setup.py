"""The service's logging: every line of the process as JSON (LOG_FORMAT=json) or logfmt text.

One handler on the root logger writes the project's lines, gunicorn's own (through
`ops.gunicorn_logging.GunicornLogger`), those of libraries and Python warnings alike. Times
are ISO 8601 in UTC (`2025-06-01T12:00:00.123Z`). A request's line carries its fields on the
log record (`request_record.ACCESS_FIELDS`): JSON members, or `key=value` pairs whose values
are quoted when they hold spaces, quotes or `=`, so logfmt parsers read every line. A filter
on the handlers takes every configured secret out of each line (its fields too) before it is
written.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from typing import Callable

import orjson

from loadbalancer.request_record import ACCESS_FIELDS
from loadbalancer.secrets import SecretScrubber

# Besides the service's own handler: gunicorn's error log, which prints what escapes a worker.
SCRUBBED_FOREIGN_LOGGERS = ("gunicorn.error",)
_plain_formatter = logging.Formatter()
_OURS = "_loadbalancer_handler"
_BARE_VALUE = re.compile(r'^[^\s"=\\]+$')


def json_logs_requested() -> bool:
    """Whether LOG_FORMAT=json is set."""
    return os.environ.get("LOG_FORMAT", "").lower() == "json"


def line_formatter() -> logging.Formatter:
    """The formatter LOG_FORMAT asks for."""
    return JsonLineFormatter() if json_logs_requested() else LogfmtFormatter()


def configure_logging() -> None:
    """One stderr handler on the root logger; the project's loggers at LOG_LEVEL (once per process)."""
    root = logging.getLogger()
    if not any(getattr(handler, _OURS, False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(line_formatter())
        setattr(handler, _OURS, True)
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > logging.WARNING:
            root.setLevel(logging.WARNING)
        logging.captureWarnings(True)  # warnings become log lines in the same format
        threading.excepthook = _log_thread_exception
    logger = logging.getLogger("loadbalancer")
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    logger.propagate = True


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """An exception that escaped a thread, as one log line rather than a bare traceback."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("loadbalancer").error("unhandled exception in thread %s", name,
                                            exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


_second_written: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def utc_timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds and a Z (the date and time of a second written once)."""
    global _second_written
    second = int(created)
    microseconds = round((created - second) * 1_000_000)  # rounded as datetime rounds it
    if microseconds == 1_000_000:
        second, microseconds = second + 1, 0
    written = _second_written  # one tuple, replaced whole: threads never see half of one
    if written[0] != second:
        written = _second_written = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{written[1]}.{microseconds // 1000:03d}Z"


def _line_fields(record: logging.LogRecord) -> dict:
    """Time, level, logger and process, then the request's fields or the message."""
    fields: dict = {"time": utc_timestamp(record.created), "level": record.levelname.lower(),
                    "logger": record.name, "pid": record.process}
    access = getattr(record, ACCESS_FIELDS, None)
    if isinstance(access, dict):
        fields.update(access)
    else:
        fields["message"] = record.getMessage()
    return fields


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
        access = getattr(record, ACCESS_FIELDS, None)
        if isinstance(access, dict):
            setattr(record, ACCESS_FIELDS, scrubber.json_value(access))
        return True


def install_secret_filter(scrubber: Callable[[], SecretScrubber]) -> None:
    """Scrub every line the service's root handler and gunicorn's error log write (one filter each).

    A later app in the same process (tests build many) takes over the filter already there.
    """
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in SCRUBBED_FOREIGN_LOGGERS]
    for handler in (handler for logger in loggers for handler in logger.handlers):
        existing = [item for item in handler.filters if isinstance(item, SecretLogFilter)]
        if existing:
            existing[0].scrubber = scrubber
        else:
            handler.addFilter(SecretLogFilter(scrubber))


class JsonLineFormatter(logging.Formatter):
    """LOG_FORMAT=json: every line is one JSON object that log shippers can parse as it is."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON object."""
        payload = _line_fields(record)
        if record.exc_info or record.exc_text:
            payload["exception"] = record.exc_text or self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()


class LogfmtFormatter(logging.Formatter):
    """The default text format: `key=value` pairs, quoted where needed (logfmt)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one logfmt line (a traceback, if any, is one quoted value)."""
        fields = _line_fields(record)
        if record.exc_info or record.exc_text:
            fields["exception"] = record.exc_text or self.formatException(record.exc_info)
        return logfmt_line(fields)


def logfmt_line(fields: dict) -> str:
    """`key=value` pairs for the fields that have a value (None, empty and all-zero are left out)."""
    pairs = []
    for key, value in fields.items():
        # Most values are None, numbers or short strings: those are written here directly.
        if value is None:
            continue
        kind = value.__class__
        if kind is str:
            if value:
                pairs.append(f"{key}={value}" if _BARE_VALUE.match(value) else f"{key}={logfmt_value(value)}")
            continue
        if kind is int or kind is float:
            pairs.append(f"{key}={value}")
            continue
        text = _logfmt_text(value)
        if text is not None:
            pairs.append(f"{key}={logfmt_value(text)}")
    return " ".join(pairs)


def _logfmt_text(value: object) -> str | None:
    """A field's value as text; None for what the line leaves out."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # the attempts: provider:outcome:42ms,...
        return ",".join(_attempt_text(item) for item in value)
    if isinstance(value, dict):
        if not any(value.values()):
            return None
        return ",".join(f"{key}:{item}" for key, item in value.items())
    return str(value)


def _attempt_text(item: object) -> str:
    if isinstance(item, dict) and {"provider", "outcome", "ms"} <= item.keys():
        return f"{item['provider']}:{item['outcome']}:{item['ms']}ms"
    return str(item)


def logfmt_value(text: str) -> str:
    """The text bare when logfmt allows it, else in double quotes with \\ " and newlines escaped."""
    if _BARE_VALUE.match(text):
        return text
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'
