"""The app built in-process (Flask test client) in front of real fake backends on 127.0.0.1.

Faster than gunicorn, and the balancer's state can be read directly: tests use it to prove
that no attempt leaves a provider marked busy or holding a half-open trial.
"""
from __future__ import annotations

import json
import time
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
        balancer, now = self.runtime.balancer, time.time()
        shared = self.runtime.store.snapshot()
        locals_ = balancer._local  # this worker's counts and trials are not part of any public view
        leftovers = {name: (local.in_flight, local.trial_owner is not None or shared.get(name).shared.trial_busy(now))
                     for name, local in locals_.items()}
        return {name: left for name, left in leftovers.items() if left[0] or left[1]}


def build_service(tmp_path: Path, *providers: Mapping[str, Any], routing: Mapping[str, Any] | None = None,
                  **sections: Any) -> InProcessService:
    """create_app() for these provider entries, without config watcher or health monitor."""
    from app import create_app

    path = tmp_path / "providers.json"
    path.write_text(json.dumps(providers_config(*providers, routing=routing, **sections)))
    app = create_app({"PROVIDERS_FILE": str(path), "DISABLE_CONFIG_WATCH": True, "DISABLE_HEALTH_MONITOR": True})
    return InProcessService(app, app.test_client())
