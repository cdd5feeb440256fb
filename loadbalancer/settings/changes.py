"""What changed between two configurations, for the reload log (never a key value)."""

from __future__ import annotations

from loadbalancer.settings.records import Config
from loadbalancer.settings.validation import changed_fields


def describe_changes(old: Config, new: Config) -> list[str]:
    """Human lines for a reload log, naming changed fields but never a key value."""
    old_providers = {provider.name: provider for provider in old.providers}
    new_providers = {provider.name: provider for provider in new.providers}
    lines = [f"provider added: {name}" for name in new_providers if name not in old_providers]
    lines += [f"provider removed: {name}" for name in old_providers if name not in new_providers]
    for name, provider in new_providers.items():
        if name in old_providers:
            changed = changed_fields(old_providers[name], provider)
            if changed:
                lines.append(f"provider modified: {name} ({', '.join(changed)})")
    for section in ("auth", "routing", "limits", "health", "state"):
        changed = changed_fields(getattr(old, section), getattr(new, section))
        if changed:
            lines.append(f"{section} modified: {', '.join(changed)}")
    return lines
