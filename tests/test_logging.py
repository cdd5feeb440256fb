"""Log lines a parser can read: JSON for every line with LOG_FORMAT=json (gunicorn's included),
logfmt otherwise, ISO 8601 UTC times, and the fields an operator looks for."""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any, Callable

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from loadbalancer.ops.logging_setup import (JsonLineFormatter, LogfmtFormatter, logfmt_line, logfmt_value,
                                            utc_timestamp)
from loadbalancer.request_record import ACCESS_FIELDS, RequestRecord
from support.fake_backend import FakeBackend, anthropic_error, anthropic_stream, status
from support.lb_process import LoadBalancerProcess, anthropic_provider, iter_sse, providers_config

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LOGFMT_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"=\\]+)')
USER_AGENT = "ops-test/1.0 (an agent with spaces)"
MESSAGE = {"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
CACHED_ANSWER = {"id": "msg_cache", "type": "message", "role": "assistant", "model": "upstream-model-x",
                 "content": [{"type": "text", "text": "hi"}], "stop_reason": "max_tokens", "stop_sequence": None,
                 "usage": {"input_tokens": 3, "output_tokens": 8, "cache_read_input_tokens": 1200,
                           "cache_creation_input_tokens": 300}}


def parse_logfmt(line: str) -> dict[str, str]:
    """A strict logfmt reading: the whole line must be key=value pairs separated by single spaces."""
    pairs = list(LOGFMT_PAIR.finditer(line))
    assert " ".join(match.group(0) for match in pairs) == line, f"not logfmt: {line!r}"
    return {match.group(1): json.loads(match.group(2)) if match.group(2).startswith('"') else match.group(2)
            for match in pairs}


@pytest.mark.parametrize(("text", "written"), [
    ("plain", "plain"),
    ("a:404_passed_through:44ms", "a:404_passed_through:44ms"),
    ("two words", '"two words"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("a=b", '"a=b"'),
    ("line\nbreak", '"line\\nbreak"'),
    ("back\\slash", '"back\\\\slash"'),
])
def test_logfmt_values_are_quoted_when_they_must_be(text: str, written: str) -> None:
    assert logfmt_value(text) == written
    assert parse_logfmt(f"k={written}") == {"k": text}


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=0, max_value=4e9) | st.integers(0, 4 * 10 ** 9).map(lambda n: n + 0.9999996))
def test_the_cached_second_writes_the_time_datetime_writes(created: float) -> None:
    expected = datetime.fromtimestamp(created, tz=timezone.utc).isoformat(timespec="milliseconds")
    assert utc_timestamp(created) == expected.replace("+00:00", "Z")


def test_a_line_leaves_out_what_has_no_value_and_writes_numbers_bare() -> None:
    line = logfmt_line({"status": 200, "latency_ms": 1.5, "stream": False, "provider": None, "error": "",
                        "tried": [], "text_tool_calls": {"parsed": 0}, "user_agent": "a b", "ratio": float("inf")})
    assert line == 'status=200 latency_ms=1.5 stream=false user_agent="a b" ratio=inf'


def access_log_record(**fields: Any) -> logging.LogRecord:
    record = RequestRecord(request_id="req_1", method="POST", path="/v1/messages", model="claude-test",
                           user_agent=USER_AGENT, client_addr="127.0.0.1", status=200, **fields)
    record.start_attempt("a").finish_passed_through(404)
    log_record = logging.LogRecord("loadbalancer.access", logging.INFO, __file__, 1, "request", (), None)
    setattr(log_record, ACCESS_FIELDS, record.fields())
    return log_record


def test_a_request_line_in_text_is_logfmt_with_an_iso_utc_time() -> None:
    line = LogfmtFormatter().format(access_log_record(error='upstream said "no" = bad'))
    fields = parse_logfmt(line)
    assert ISO_UTC.match(fields["time"]) and fields["level"] == "info"
    assert fields["user_agent"] == USER_AGENT and fields["error"] == 'upstream said "no" = bad'
    assert fields["tried"].startswith("a:404_passed_through:") and fields["method"] == "POST"
    assert "attempts" not in fields and "first_byte_ms" not in fields


def test_a_request_line_in_json_has_structured_attempts() -> None:
    payload = json.loads(JsonLineFormatter().format(access_log_record()))
    assert list(payload)[:4] == ["time", "level", "logger", "pid"] and ISO_UTC.match(payload["time"])
    assert payload["tried"] == [{"provider": "a", "outcome": "404_passed_through", "ms": 0}]
    assert payload["client_addr"] == "127.0.0.1" and payload["user_agent"] == USER_AGENT


def test_an_exception_stays_on_one_line_in_both_formats() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("loadbalancer", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info())
    assert "\n" not in LogfmtFormatter().format(record)
    assert "ValueError: boom" in json.loads(JsonLineFormatter().format(record))["exception"]


def exercise(service: LoadBalancerProcess, backend: FakeBackend) -> dict[str, str]:
    """A cached answer, a slow stream, a passed-on 404; their request ids by kind."""
    headers = {"user-agent": USER_AGENT}
    backend.queue(status(200, json_body=CACHED_ANSWER))
    cached = requests.post(f"{service.url}/v1/messages", json=MESSAGE, headers=headers, timeout=10)
    backend.queue(anthropic_stream(["slow"], delay=0.3))
    with requests.post(f"{service.url}/v1/messages", json={**MESSAGE, "stream": True}, headers=headers,
                       stream=True, timeout=10) as streamed:
        list(iter_sse(streamed))
    backend.queue(anthropic_error(404, "not_found_error", "no such model"))
    missing = requests.post(f"{service.url}/v1/messages", json=MESSAGE, headers=headers, timeout=10)
    assert (cached.status_code, streamed.status_code, missing.status_code) == (200, 200, 404)
    ids = {"cached": cached.headers["x-request-id"], "stream": streamed.headers["x-request-id"],
           "missing": missing.headers["x-request-id"]}
    service.wait_for_log(ids["missing"])
    return ids


def service_for(fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess],
                env: dict[str, str]) -> tuple[LoadBalancerProcess, FakeBackend]:
    backend = fake_backend()
    entry = anthropic_provider("up", backend.url, models={"claude-test": "upstream-model-x"})
    return lb(providers_config(entry), env=env), backend


@pytest.mark.integration
def test_with_log_format_json_every_line_of_the_process_is_json(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    service, backend = service_for(fake_backend, lb, {"LOG_FORMAT": "json"})
    ids = exercise(service, backend)
    lines = [json.loads(line) for line in service.log_text().splitlines() if line.strip()]
    assert all(ISO_UTC.match(line["time"]) for line in lines)
    gunicorn_messages = [line["message"] for line in lines if line["logger"] == "gunicorn.error"]
    assert any("Booting worker" in message for message in gunicorn_messages), gunicorn_messages
    assert any("Listening at" in message for message in gunicorn_messages)
    by_id = {line["request_id"]: line for line in lines if "request_id" in line}
    cached = by_id[ids["cached"]]
    assert (cached["upstream_model"], cached["cache_read_tokens"], cached["cache_write_tokens"],
            cached["stop_reason"], cached["input_tokens"]) == ("upstream-model-x", 1200, 300, "max_tokens", 3)
    assert cached["client_addr"] == "127.0.0.1" and cached["user_agent"] == USER_AGENT
    streamed = by_id[ids["stream"]]
    # Three events 0.3 s apart come before the first content: the first byte came at once.
    assert streamed["first_token_ms"] >= 500 and streamed["stop_reason"] == "end_turn"
    assert by_id[ids["missing"]]["tried"][0]["outcome"] == "404_passed_through"


@pytest.mark.integration
def test_the_text_format_is_logfmt_on_every_line(fake_backend: Callable[..., FakeBackend],
                                                 lb: Callable[..., LoadBalancerProcess]) -> None:
    service, backend = service_for(fake_backend, lb, {})
    ids = exercise(service, backend)
    lines = [parse_logfmt(line) for line in service.log_text().splitlines() if line.strip()]
    assert all(ISO_UTC.match(line["time"]) for line in lines)
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
    by_id = {line["request_id"]: line for line in lines if "request_id" in line}
    assert by_id[ids["missing"]]["tried"].startswith("up:404_passed_through:")
    assert by_id[ids["cached"]]["user_agent"] == USER_AGENT
    assert by_id[ids["cached"]]["cache_read_tokens"] == "1200"
