"""The application factory: `create_app()` is the only way to build the app.

    PROVIDERS_FILE=/path/providers.json gunicorn -c gunicorn.conf.py 'app:create_app()'
    flask --app app check-config [PATH]
    flask --app app probe
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path
from typing import Mapping

import click
from flask import Flask

from config import ConfigError, load_config
from loadbalancer.ops.config_watch import ConfigWatcher
from loadbalancer.ops.health_monitor import HealthMonitor
from loadbalancer.ops.logging_setup import configure_logging, install_secret_filter
from loadbalancer.ops.metrics import Metrics
from loadbalancer.ops.model_catalog import ModelCatalog
from loadbalancer.ops.rate_limit import RateLimiter
from loadbalancer.request_record import RequestRecord
from loadbalancer.routing.state import open_store, state_directory
from loadbalancer.runtime import Runtime, RuntimeHolder

DEFAULT_PROVIDERS_FILE = Path(__file__).resolve().parent / "providers.json"
log = logging.getLogger("loadbalancer")


class LoadBalancerState:
    """What the app keeps per worker: the runtime holder and logging choices."""

    def __init__(self, holder: RuntimeHolder | None, providers_file: str, json_logs: bool) -> None:
        self.holder = holder
        self.providers_file = providers_file
        self.json_logs = json_logs
        self.watcher: ConfigWatcher | None = None
        self.request_observers: list = []
        # Set by init_operations: Metrics, RateLimiter, HealthMonitor, ModelCatalog.
        self.metrics = None
        self.rate_limiter = None
        self.monitor = None
        self.model_catalog = None

    def observe_request(self, record: RequestRecord) -> None:
        """Called once per finished request (metrics hook in here)."""
        for observer in self.request_observers:
            observer(record)


def providers_file_path(test_config: Mapping | None) -> str:
    """The providers file: test config, then $PROVIDERS_FILE, then the one beside app.py."""
    if test_config and test_config.get("PROVIDERS_FILE"):
        return str(test_config["PROVIDERS_FILE"])
    return os.environ.get("PROVIDERS_FILE") or str(DEFAULT_PROVIDERS_FILE)


def create_app(test_config: Mapping | None = None) -> Flask:
    """Build the load balancer app from the providers file."""
    configure_logging()
    app = Flask(__name__)
    app.config.from_mapping(JSON_SORT_KEYS=False)
    if test_config:
        app.config.from_mapping(test_config)
    path = providers_file_path(test_config)
    try:
        config = load_config(path)
    except ConfigError:
        if click.get_current_context(silent=True) is None:
            raise
        # Under the flask CLI a broken file must still let `check-config` say what is wrong.
        app.extensions["loadbalancer"] = LoadBalancerState(None, path, False)
        register_cli(app)
        return app
    app.config["MAX_CONTENT_LENGTH"] = config.limits.max_body_bytes
    if not os.environ.get("LB_DISABLED_PROVIDERS_LOGGED"):  # gunicorn's master said it already
        for provider in config.providers:
            if not provider.enabled:
                log.warning("provider %s disabled: %s", provider.name, provider.disabled_reason)
    # One store per worker process, opened here (after gunicorn forked), kept across reloads.
    opener = functools.partial(open_store, directory=state_directory())
    holder = RuntimeHolder(Runtime.build(config, open_store=opener), loader=load_config, open_store=opener)
    install_secret_filter(lambda: holder.current.scrubber)
    state = LoadBalancerState(holder, path, os.environ.get("LOG_FORMAT", "").lower() == "json")
    app.extensions["loadbalancer"] = state
    if not (test_config or {}).get("DISABLE_CONFIG_WATCH") and os.environ.get("LB_WATCH_CONFIG", "1") != "0":
        state.watcher = ConfigWatcher(path, holder)
        state.watcher.start()

    import routes  # imported here so that importing app.py does no work
    app.register_blueprint(routes.bp)
    # One monitor per worker process; never in tests that opt out or in CLI commands.
    start_monitor = (not (test_config or {}).get("DISABLE_HEALTH_MONITOR")
                     and click.get_current_context(silent=True) is None)
    init_operations(state, start_monitor=start_monitor)
    register_cli(app)
    return app


def init_operations(state: LoadBalancerState, *, start_monitor: bool = True) -> None:
    """Give the app its metrics, rate limiter and health monitor; count every finished request."""
    import health
    state.metrics = Metrics()
    state.rate_limiter = RateLimiter(lambda: state.holder.current.store)
    state.monitor = HealthMonitor(state.holder, probe=health.probe_all)
    state.model_catalog = ModelCatalog(probe=health.probe_listings)

    def record_metrics(record: RequestRecord) -> None:
        """Count the request; models no provider serves share one label."""
        balancer = state.holder.current.balancer
        state.metrics.observe_request(record, lambda model: bool(balancer.serving(model)))

    state.request_observers.append(record_metrics)
    if start_monitor:
        state.monitor.start()


def register_cli(app: Flask) -> None:
    """`flask --app app check-config [PATH]` and `flask --app app probe`."""

    @app.cli.command("check-config")
    @click.argument("path", required=False)
    def check_config(path: str | None) -> None:
        """Validate a providers file without starting the service."""
        target = path or app.extensions["loadbalancer"].providers_file
        try:
            config = load_config(target)
        except ConfigError as err:
            click.echo(str(err), err=True)
            sys.exit(1)
        for provider in config.providers:
            state = "enabled" if provider.enabled else f"disabled ({provider.disabled_reason})"
            click.echo(f"{provider.name}: {provider.type} {state}")
        click.echo(f"{target}: OK ({len(config.providers)} providers)")

    @app.cli.command("probe")
    def probe() -> None:
        """Probe every provider; exit 0 only when all enabled ones are usable."""
        from health import probe_all
        state = app.extensions["loadbalancer"]
        if state.holder is None:
            load_config(state.providers_file)  # raises the ConfigError that says what is wrong
        runtime = state.holder.current
        results = {result.name: result for result in probe_all(runtime)}
        click.echo(f"{'provider':20} {'reachable':9} {'auth':5} {'latency_ms':>10}  models / error")
        all_usable = True
        for provider in runtime.config.providers:
            result = results.get(provider.name)
            if result is None:
                click.echo(f"{provider.name:20} {'-':9} {'-':5} {'-':>10}  disabled: {provider.disabled_reason}")
                continue
            all_usable = all_usable and result.usable
            detail = result.error or ", ".join(result.models[:5]) or "-"
            auth = {True: "ok", False: "no", None: "-"}[result.auth_ok]
            latency = "-" if result.latency_ms is None else f"{result.latency_ms:.0f}"
            click.echo(f"{provider.name:20} {'yes' if result.reachable else 'no':9} {auth:5} {latency:>10}  {detail}")
        sys.exit(0 if all_usable and results else 1)
