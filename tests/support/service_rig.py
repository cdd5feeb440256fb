"""Helpers the integration tests share: SDK clients, /health reads, cooldown waits, error bodies."""
from __future__ import annotations

import time
from typing import Any

import anthropic
import openai
import requests

from support.lb_process import LoadBalancerProcess

CLIENT_TIMEOUT = 10.0
REST_POLL_INTERVAL = 0.05


def anthropic_sdk(lb: LoadBalancerProcess) -> anthropic.Anthropic:
    """The anthropic SDK pointed at the service, without retries of its own that would hide failures."""
    return anthropic.Anthropic(base_url=lb.url, api_key="client-key", max_retries=0, timeout=CLIENT_TIMEOUT)


def openai_sdk(lb: LoadBalancerProcess) -> openai.OpenAI:
    """The openai SDK pointed at the service's OpenAI front door."""
    return openai.OpenAI(base_url=lb.url + "/v1", api_key="x", max_retries=0, timeout=CLIENT_TIMEOUT)


def provider_states(lb: LoadBalancerProcess) -> dict[str, dict[str, Any]]:
    """The /health entries by provider name."""
    report = requests.get(lb.url + "/health", timeout=CLIENT_TIMEOUT).json()
    return {entry["name"]: entry for entry in report["providers"]}


def wait_until_rested(lb: LoadBalancerProcess, timeout: float = 5.0) -> None:
    """Block until no provider cools down, so one test's failures do not steer the next.

    Reads `state`, not `cooldown_remaining_s`: that is rounded to 0.1 s and shows 0.0 too early.
    """
    deadline = time.monotonic() + timeout
    while True:
        states = provider_states(lb)
        if not any(entry["state"] == "cooling_down" for entry in states.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"providers still cooling down after {timeout}s: {states}")
        time.sleep(REST_POLL_INTERVAL)


def anthropic_error_of(response: requests.Response) -> dict[str, Any]:
    """The `error` object of an Anthropic-format JSON error answer; fails on anything else (HTML, ...)."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert body["type"] == "error", body
    return body["error"]
