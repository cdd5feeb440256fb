"""Which content types the Messages API reads as JSON, and the 415 for the rest.

Deliberate: curl -d sends application/x-www-form-urlencoded unless told otherwise, and some
clients label JSON text/plain; the body is read as JSON for those. A type that announces
another format (multipart, XML, ...) gets 415 before any provider is contacted.
"""
from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from support.lb_process import anthropic_provider, providers_config

PROVIDER_URL = "http://127.0.0.1:1"
BODY = json.dumps({"model": "claude-test", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
          "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
          "usage": {"input_tokens": 3, "output_tokens": 2}}


@pytest.fixture
def providers_data() -> dict[str, Any]:
    return providers_config(anthropic_provider("primary", PROVIDER_URL))


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "application/vnd.api+json",
    "application/x-www-form-urlencoded", "text/plain", None,
])
def test_json_and_the_types_clients_mislabel_it_with_are_read_as_json(client: Any, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{PROVIDER_URL}/v1/messages", json=ANSWER)
        reply = client.post("/v1/messages", data=BODY, headers=headers)
    assert reply.status_code == 200


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=x", "application/xml", "text/html",
                                          "application/octet-stream"])
def test_other_content_types_get_415_without_contacting_a_provider(client: Any, content_type: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        reply = client.post("/v1/messages", data=BODY, headers={"content-type": content_type})
        assert len(mock.calls) == 0
    assert reply.status_code == 415
    error = reply.get_json()["error"]
    assert error["type"] == "invalid_request_error" and "send application/json" in error["message"]
