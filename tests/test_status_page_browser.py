"""The status page in a real headless Chromium: what an operator looks at.

The test saves a screenshot of the page to the run's artefacts directory
($TEST_ARTEFACTS_DIR, else test-artefacts/ in the repository) and prints where.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from support.fake_backend import FakeBackend, anthropic_error, status
from support.lb_process import REPO_ROOT, LoadBalancerProcess, anthropic_provider, providers_config

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MESSAGE = {"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
CLIENT_KEY = "sk-client-status-page-0123456789"
OPS_KEY = "sk-ops-status-page-0123456789"
WAIT_MS = 15_000
UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC")


def chromium_path() -> str | None:
    """Debian's Chromium binary, if installed."""
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def artefacts_dir() -> Path:
    """Where this run keeps what a person should look at afterwards."""
    directory = Path(os.environ.get("TEST_ARTEFACTS_DIR") or REPO_ROOT / "test-artefacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright; skipped with a reason when there is none."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium binary (apt-get install chromium; .ci/run does): status page browser test skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def post(service: LoadBalancerProcess) -> requests.Response:
    return requests.post(f"{service.url}/v1/messages", json=MESSAGE, headers={"x-api-key": CLIENT_KEY},
                         timeout=10)


def rows_text(page: Any) -> list[str]:
    return [row.inner_text() for row in page.locator("#recent tbody tr[data-request-id]").all()]


@pytest.mark.integration
def test_status_page_shows_charts_cooldowns_probes_and_recent_requests(
        browser: Any, fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    alpha, beta, gamma = fake_backend(), fake_backend(), fake_backend()
    beta.set_default_for("/v1/messages", anthropic_error(529, "overloaded_error", "overloaded"))
    gamma.set_default_for("/v1/models", status(500))  # it may answer requests, but its probe fails
    config = providers_config(
        anthropic_provider("alpha", alpha.url, priority=2),
        anthropic_provider("beta", beta.url, priority=1),
        anthropic_provider("gamma", gamma.url, priority=3),
        routing={"cooldown": 60, "max_cooldown": 120},
        auth={"api_keys": [{"name": "g3", "key": CLIENT_KEY}], "ops_keys": [{"name": "ops", "key": OPS_KEY}]})
    config["health"] = {"interval": 1, "timeout": 1}
    # Two workers: provider states and the timeline are shared, so whichever draws the page shows all.
    service = lb(config, workers=2)
    assert requests.get(f"{service.url}/", headers={"accept": "text/html"}, timeout=5).status_code == 401
    assert requests.get(f"{service.url}/", headers={"accept": "*/*"}).headers["content-type"].startswith(
        "application/json")

    first = post(service)  # beta first: overloaded, it cools down for a minute; alpha answers
    assert first.status_code == 200 and first.headers["x-lb-provider"] == "alpha"
    alpha.queue(anthropic_error(400, "invalid_request_error", "bad request from the client"))
    assert post(service).status_code == 400
    answered = [post(service) for _ in range(4)]
    assert all(reply.status_code == 200 for reply in answered)

    page = browser.new_context(http_credentials={"username": "ops", "password": OPS_KEY},
                               viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{service.url}/?refresh=1")
    assert page.title() == "anthropic-loadbalancer status"
    # Each worker publishes its latest requests every 2 s.
    page.wait_for_function("() => document.querySelectorAll('#recent tbody tr[data-request-id]').length >= 6",
                           timeout=WAIT_MS)
    page.wait_for_function(
        """() => document.querySelector('[data-provider="gamma"] .probe').textContent.includes('HTTP 500')""",
        timeout=WAIT_MS)

    alpha_card, beta_card, gamma_card = (page.locator(f'[data-provider="{name}"]')
                                         for name in ("alpha", "beta", "gamma"))
    assert gamma_card.locator(".probe").inner_text().startswith("HTTP 500 · ")  # never "ok" for a 500
    assert gamma_card.locator(".state").inner_text() == "unhealthy"
    assert alpha_card.locator(".probe").inner_text().startswith("ok · ")
    assert alpha_card.locator(".state").inner_text() == "healthy"
    assert re.fullmatch(r"cooling down, \d+ s left", beta_card.locator(".state").inner_text())
    assert "529" in beta_card.locator(".last-error").inner_text()
    assert beta_card.locator(".requests-chart svg rect.errors").count() == 1
    assert alpha_card.locator(".requests-chart svg rect").count() >= 1
    assert alpha_card.locator(".latency-chart svg circle").count() >= 1
    assert page.locator("#overall").inner_text() == "degraded"
    header = page.locator("header").inner_text()
    assert UTC_TIME.search(header), header
    assert page.locator('a[href="health"]').count() == 1 and page.locator('a[href="metrics"]').count() == 1
    body = page.locator("body").inner_text()
    assert "worker " not in body and "refreshes" not in body

    rows = rows_text(page)
    assert any("beta 529" in row and "alpha ok" in row for row in rows), rows
    assert sum(1 for row in rows if "\t400\t" in row) == 1

    page.click('a[data-filter="4xx"]')
    page.wait_for_function("() => document.querySelectorAll('#recent tbody tr[data-request-id]').length === 1",
                           timeout=WAIT_MS)
    assert "400" in rows_text(page)[0]
    assert page.locator('a[data-filter="4xx"]').get_attribute("class") == "active"

    page.click('a[data-filter="all"]')
    page.wait_for_function("() => document.querySelectorAll('#recent tbody tr[data-request-id]').length >= 6",
                           timeout=WAIT_MS)
    before = page.locator("#generated-at").inner_text()
    assert post(service).status_code == 200
    page.wait_for_function("() => document.querySelectorAll('#recent tbody tr[data-request-id]').length >= 7",
                           timeout=WAIT_MS)
    assert page.locator("#generated-at").inner_text() != before  # it refreshed by itself
    assert page.is_hidden("#error")

    screenshot = artefacts_dir() / "status-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"\nstatus page screenshot: {screenshot}")
    for secret in (CLIENT_KEY, OPS_KEY, "sk-test-alpha", "sk-test-beta", "sk-test-gamma"):
        assert secret not in page.content()
