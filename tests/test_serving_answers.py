"""The pieces of loadbalancer/serving/ with plain inputs: time limits from the environment, refusals."""
from __future__ import annotations

import pytest
from gunicorn.http import errors as parse_errors

from loadbalancer.errors import ClientTimeout
from loadbalancer.serving.connection import ClientTimeouts
from loadbalancer.serving.raw_answers import answer_for, json_error_bytes
from support.raw_http import parse_answer


def test_time_limits_default_when_unset_and_follow_the_environment() -> None:
    assert ClientTimeouts.from_environ({}, keepalive_seconds=75) == ClientTimeouts()
    limits = ClientTimeouts.from_environ({"LB_HEADER_TIMEOUT": "2.5", "LB_BODY_IDLE_TIMEOUT": "4",
                                          "LB_BODY_TIMEOUT": "60"}, keepalive_seconds=5)
    assert limits == ClientTimeouts(header_seconds=2.5, body_idle_seconds=4, body_seconds=60, keepalive_seconds=5)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_a_time_limit_that_is_not_a_positive_number_is_refused_with_its_name(value: str) -> None:
    with pytest.raises(ValueError, match="LB_BODY_TIMEOUT"):
        ClientTimeouts.from_environ({"LB_BODY_TIMEOUT": value}, keepalive_seconds=75)


@pytest.mark.parametrize("error, status", [
    (parse_errors.LimitRequestHeaders("limit request headers fields size"), 431),
    (parse_errors.LimitRequestLine(9000, 8190), 414),
    (parse_errors.InvalidHeader("x-api-key: sk-secret\x00"), 400),
    (parse_errors.InvalidRequestLine("GARBAGE sk-secret"), 400),
    (parse_errors.InvalidHTTPVersion("HTTP/9.9"), 400),
    (parse_errors.UnsupportedTransferCoding("gzip"), 501),
    (ClientTimeout("request headers did not arrive within 10 s"), 408),
])
def test_refusals_get_their_status_and_never_echo_what_the_client_sent(error: Exception, status: int) -> None:
    answer = answer_for(error)
    assert answer is not None and answer[0] == status
    assert "sk-secret" not in answer[1]


def test_an_error_that_is_no_clients_fault_has_no_refusal() -> None:
    assert answer_for(RuntimeError("bug")) is None


def test_a_raw_answer_is_a_whole_http_response_with_an_anthropic_error() -> None:
    answer = parse_answer(json_error_bytes(503, "full", {"retry-after": "1"}))
    assert answer is not None and answer.status == 503
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close" and answer.headers["retry-after"] == "1"
    assert answer.json() == {"type": "error", "error": {"type": "overloaded_error", "message": "full"}}
