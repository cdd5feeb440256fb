"""The `/v1/models` listing: which names are listed, with which providers, paged as Anthropic pages."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from config import parse_config
from loadbalancer.errors import InvalidRequest
from loadbalancer.ops.health_monitor import ProbeResult
from loadbalancer.ops.model_catalog import (CACHE_SECONDS, ListedModel, ModelCatalog, anthropic_page, list_models,
                                            served_model)

CONFIG = parse_config({"providers": [
    {"name": "anthropic", "type": "anthropic", "base_url": "http://a", "models": {"claude-*": "*"}},
    {"name": "router", "type": "openai", "base_url": "http://r/v1", "models": {"claude-*": "qwen3", "qwen-coder": "*"}},
    {"name": "off", "type": "anthropic", "base_url": "http://o", "api_key": "${UNSET_FOR_THIS_TEST}",
     "models": ["claude-off-only"]},
]}, "test", environ={})


def test_reported_models_are_listed_only_when_a_route_accepts_them_with_every_provider_that_does():
    reported = {"anthropic": ("claude-b", "claude-a"), "router": ("qwen3", "gpt-4o", "claude-a")}
    assert list_models(CONFIG, reported) == [
        ListedModel("claude-a", ("anthropic", "router")), ListedModel("claude-b", ("anthropic", "router")),
        ListedModel("qwen-coder", ("router",))]


def test_without_reports_only_exact_names_of_enabled_providers_are_listed():
    assert list_models(CONFIG, {}) == [ListedModel("qwen-coder", ("router",))]


@pytest.mark.parametrize("model_id, providers", [("claude-b", ("anthropic", "router")),
                                                 ("claude-unlisted", ("anthropic", "router")),
                                                 ("claude-off-only", ("anthropic", "router")),
                                                 ("gpt-4o", None)])
def test_one_model_is_found_when_some_route_serves_it(model_id, providers):
    found = served_model(CONFIG, list_models(CONFIG, {"anthropic": ("claude-b",)}), model_id)
    assert (found.providers if found else None) == providers


MODELS = [ListedModel(f"m{number}", ("p",)) for number in range(5)]


@pytest.mark.parametrize("args, ids, has_more", [
    ({}, ["m0", "m1", "m2", "m3", "m4"], False),
    ({"limit": "2"}, ["m0", "m1"], True),
    ({"limit": "2", "after_id": "m1"}, ["m2", "m3"], True),
    ({"limit": "2", "after_id": "m2"}, ["m3", "m4"], False),
    ({"limit": "2", "before_id": "m4"}, ["m2", "m3"], True),
    ({"limit": "2", "before_id": "m2"}, ["m0", "m1"], False),
    ({"after_id": "m4"}, [], False),
])
def test_anthropic_pages(args, ids, has_more):
    page = anthropic_page(MODELS, args)
    assert [model["id"] for model in page["data"]] == ids and page["has_more"] is has_more
    assert (page["first_id"], page["last_id"]) == ((ids[0], ids[-1]) if ids else (None, None))


@pytest.mark.parametrize("args, message", [({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"),
                                           ({"limit": "x"}, "limit"), ({"after_id": "nope"}, "after_id"),
                                           ({"after_id": "m1", "before_id": "m3"}, "together")])
def test_bad_page_arguments_are_a_400(args, message):
    with pytest.raises(InvalidRequest, match=message):
        anthropic_page(MODELS, args)


def probe_result(name: str, models: tuple[str, ...], reachable: bool = True) -> ProbeResult:
    return ProbeResult(name, reachable, True if reachable else None, 1.0, models, None, 0.0)


class FakeProbes:
    """Answers probe_listings with fixed models and counts what it was asked."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def __call__(self, runtime, names):
        self.asked.append(list(names))
        return {name: probe_result(name, (f"{name}-model",), reachable=name != "down") for name in names}


def runtime_with(*names: str, paid: tuple[str, ...] = ()):
    """What ModelCatalog reads of a Runtime: the enabled providers' clients and configs."""
    providers = {name: SimpleNamespace(config=SimpleNamespace(health_paid_probe=name in paid)) for name in names}
    return SimpleNamespace(clients=dict.fromkeys(names), providers=providers)


def test_the_catalog_probes_each_provider_once_per_cache_lifetime():
    now = [0.0]
    probes = FakeProbes()
    catalog = ModelCatalog(probes, clock=lambda: now[0])
    runtime = runtime_with("a", "down")
    assert catalog.reported_models(runtime, {}) == {"a": ("a-model",), "down": ()}
    now[0] = CACHE_SECONDS / 2
    catalog.reported_models(runtime, {})
    assert probes.asked == [["a", "down"], ["down"]]  # a failed probe is retried sooner
    now[0] = CACHE_SECONDS + 1
    catalog.reported_models(runtime, {})
    assert probes.asked[-1] == ["a", "down"]


def test_the_monitors_results_are_used_and_paid_probes_never_run_for_a_listing():
    probes = FakeProbes()
    catalog = ModelCatalog(probes, clock=lambda: 0.0)
    runtime = runtime_with("monitored", "paid", paid=("paid",))
    reported = catalog.reported_models(runtime, {"monitored": probe_result("monitored", ("from-monitor",))})
    assert reported == {"monitored": ("from-monitor",)}
    assert probes.asked == []
