"""Every provider type, keyed by its `type` in providers.json: the one list to extend.

Adding a provider type is one module with a `Provider` subclass, one line here, and its tests.
"""

from __future__ import annotations

from loadbalancer.providers.anthropic import AnthropicProvider
from loadbalancer.providers.base import Provider
from loadbalancer.providers.bedrock import BedrockProvider
from loadbalancer.providers.openai import OpenAIProvider
from loadbalancer.providers.vertex import VertexProvider
from loadbalancer.settings.records import ProviderConfig

PROVIDER_TYPES: dict[str, type[Provider]] = {
    provider_type.type_name: provider_type for provider_type in (AnthropicProvider, OpenAIProvider, BedrockProvider, VertexProvider)
}


def provider_type(type_name: str) -> type[Provider]:
    """The class of a provider type; KeyError for a type that does not exist."""
    return PROVIDER_TYPES[type_name]


def build_provider(config: ProviderConfig) -> Provider:
    """The interface object for one configured provider."""
    return PROVIDER_TYPES[config.type](config)
