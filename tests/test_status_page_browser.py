"""The status page in a real headless Chromium: rows and states render, then refresh."""
from __future__ import annotations

import shutil
from typing import Any, Callable, Iterator

import pytest
import requests

from support.fake_backend import FakeBackend, closed_port
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MESSAGE = {"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
WAIT_MS = 10_000


def chromium_path() -> str | None:
    """Debian's Chromium binary, if installed."""
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@pytest.fixture
def page() -> Iterator[Any]:
    """A Playwright page in Debian's Chromium; skipped with a reason when there is none."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium binary (apt-get install chromium; .ci/run does): status page browser test skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_page()
        finally:
            browser.close()


@pytest.mark.integration
def test_status_page_shows_providers_and_states_and_refreshes(
        page: Any, fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    backend = fake_backend()
    service = lb(providers_config(anthropic_provider("alpha", backend.url, priority=2),
                                  anthropic_provider("beta", f"http://127.0.0.1:{closed_port()}", priority=1)),
                 workers=1)
    curl_view = requests.get(f"{service.url}/", headers={"accept": "*/*"})
    assert curl_view.headers["content-type"].startswith("application/json")

    page.goto(f"{service.url}/?refresh=1")
    page.wait_for_selector('tr[data-provider="beta"]', timeout=WAIT_MS)
    assert page.title() == "anthropic-loadbalancer status"
    assert page.text_content('tr[data-provider="alpha"] td.state') == "healthy"
    assert page.text_content('tr[data-provider="alpha"] td.requests') == "0"
    assert page.text_content("#overall") == "ok"

    # beta is down: a request that tries it first fails over to alpha; the page must catch up.
    answer = requests.post(f"{service.url}/v1/messages", json=MESSAGE)
    assert answer.status_code == 200 and answer.headers["x-lb-provider"] == "alpha"
    page.wait_for_function(
        """() => document.querySelector('tr[data-provider="alpha"] td.requests').textContent === "1" """,
        timeout=WAIT_MS)
    assert page.text_content('tr[data-provider="beta"] td.failovers') == "1"
    assert page.text_content('tr[data-provider="beta"] td.state') in ("cooling_down", "unhealthy")
    assert "connection refused" in page.text_content('tr[data-provider="beta"] td.last-error')
    refreshes = int(page.text_content("#refresh-count"))
    page.wait_for_function(f"() => Number(document.querySelector('#refresh-count').textContent) > {refreshes}",
                           timeout=WAIT_MS)
    assert page.locator("#providers tbody tr").count() == 2
    assert page.is_hidden("#error")
