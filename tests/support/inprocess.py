"""The app built in-process (Flask test client) in front of real fake backends on 127.0.0.1.

Faster than gunicorn, and the balancer's state can be read directly: tests use it to prove
that no attempt leaves a provider marked busy or holding a half-open trial.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from support.lb_process import providers_config


@dataclass
class InProcessService:
    """A Flask app and its test client."""

    app: Any
    client: Any

    @property
    def runtime(self) -> Any:
        """The runtime new requests use."""
        return self.app.extensions["loadbalancer"].holder.current

    def health(self) -> dict[str, dict[str, Any]]:
        """/health entries by provider name."""
        return {entry["name"]: entry for entry in self.client.get("/health").get_json()["providers"]}

    def leftover_state(self) -> dict[str, tuple[int, bool]]:
        """Providers still counting a request in flight or holding a half-open trial."""
        states = self.runtime.balancer._states  # the trial flag is not part of any public view
        return {name: (state.in_flight, state.trial_in_flight) for name, state in states.items()
                if state.in_flight or state.trial_in_flight}


def build_service(tmp_path: Path, *providers: Mapping[str, Any], routing: Mapping[str, Any] | None = None,
                  **sections: Any) -> InProcessService:
    """create_app() for these provider entries, without config watcher or health monitor."""
    from app import create_app

    path = tmp_path / "providers.json"
    path.write_text(json.dumps(providers_config(*providers, routing=routing, **sections)))
    app = create_app({"PROVIDERS_FILE": str(path), "DISABLE_CONFIG_WATCH": True, "DISABLE_HEALTH_MONITOR": True})
    return InProcessService(app, app.test_client())
