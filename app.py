"""The application factory: `create_app()` is the only way to build the app.

    PROVIDERS_FILE=/path/providers.json gunicorn -c gunicorn.conf.py 'app:create_app()'
    flask --app app check-config [PATH] [--env-file FILE]
    flask --app app probe [PATH] [--env-file FILE]
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Mapping

import click
from flask import Flask

from config import ConfigError, inspect_config, load_config
from loadbalancer.ops.build_info import git_revision, python_version
from loadbalancer.ops.config_watch import ConfigWatcher
from loadbalancer.ops.health_monitor import HealthMonitor
from loadbalancer.ops.logging_setup import configure_logging, install_secret_filter
from loadbalancer.ops.metrics import Metrics
from loadbalancer.ops.model_catalog import ModelCatalog
from loadbalancer.ops.publisher import Publisher
from loadbalancer.ops.rate_limit import RateLimiter
from loadbalancer.ops.timeline import Timeline
from loadbalancer.request_record import RequestRecord
from loadbalancer.routing.state import open_store, state_directory
from loadbalancer.runtime import Runtime, RuntimeHolder
from loadbalancer.settings.env_file import EnvironmentFileError, read_environment_file

DEFAULT_PROVIDERS_FILE = Path(__file__).resolve().parent / "providers.json"
log = logging.getLogger("loadbalancer")


class LoadBalancerState:
    """What the app keeps per worker: the runtime holder and the operations around it."""

    def __init__(self, holder: RuntimeHolder | None, providers_file: str) -> None:
        self.holder = holder
        self.providers_file = providers_file
        self.watcher: ConfigWatcher | None = None
        self.request_observers: list = []
        # Set by init_operations: Metrics, RateLimiter, HealthMonitor, ModelCatalog, Timeline, Publisher.
        self.metrics = None
        self.rate_limiter = None
        self.monitor = None
        self.model_catalog = None
        self.timeline = None
        self.publisher = None

    def observe_request(self, record: RequestRecord) -> None:
        """Called once per finished request (metrics and the timeline hook in here)."""
        for observer in self.request_observers:
            observer(record)


def providers_file_path(test_config: Mapping | None) -> str:
    """The providers file: test config, then $PROVIDERS_FILE, then the one beside app.py."""
    if test_config and test_config.get("PROVIDERS_FILE"):
        return str(test_config["PROVIDERS_FILE"])
    return os.environ.get("PROVIDERS_FILE") or str(DEFAULT_PROVIDERS_FILE)


def create_app(test_config: Mapping | None = None) -> Flask:
    """Build the load balancer app from the providers file.

    Under the flask CLI nothing is loaded: `check-config` and `probe` read the file they are
    given (the service itself runs under gunicorn).
    """
    configure_logging()
    app = Flask(__name__)
    app.config.from_mapping(JSON_SORT_KEYS=False)
    if test_config:
        app.config.from_mapping(test_config)
    path = providers_file_path(test_config)
    register_cli(app)
    if click.get_current_context(silent=True) is not None:
        app.extensions["loadbalancer"] = LoadBalancerState(None, path)
        return app
    config = load_config(path)
    app.config["MAX_CONTENT_LENGTH"] = config.limits.max_body_bytes
    if not os.environ.get("LB_DISABLED_PROVIDERS_LOGGED"):  # gunicorn's master said it already
        for provider in config.providers:
            if not provider.enabled:
                log.warning("provider %s disabled: %s", provider.name, provider.disabled_reason)
    # One store per worker process, opened here (after gunicorn forked), kept across reloads.
    directory = state_directory()
    opener = functools.partial(open_store, directory=directory)
    holder = RuntimeHolder(Runtime.build(config, open_store=opener), loader=load_config, open_store=opener)
    install_secret_filter(lambda: holder.current.scrubber)
    state = LoadBalancerState(holder, path)
    app.extensions["loadbalancer"] = state
    if not (test_config or {}).get("DISABLE_CONFIG_WATCH") and os.environ.get("LB_WATCH_CONFIG", "1") != "0":
        state.watcher = ConfigWatcher(path, holder)
        state.watcher.start()

    import routes  # imported here so that importing app.py does no work
    app.register_blueprint(routes.bp)
    # One monitor per worker process; never in tests that opt out.
    init_operations(state, directory, start_threads=not (test_config or {}).get("DISABLE_HEALTH_MONITOR"))
    return app


def init_operations(state: LoadBalancerState, directory: Path, *, start_threads: bool = True) -> None:
    """Metrics, rate limiter, health monitor, timeline (in `directory`); count every finished request."""
    import health
    state.metrics = Metrics()
    state.metrics.set_build(git_revision(Path(__file__).resolve().parent), python_version())
    state.metrics.config_loaded(True, time.time())
    state.holder.reload_listeners.append(lambda success: state.metrics.config_loaded(success, time.time()))
    state.rate_limiter = RateLimiter(lambda: state.holder.current.store)
    state.monitor = HealthMonitor(state.holder, probe=health.probe_all)
    state.model_catalog = ModelCatalog(probe=health.probe_listings)
    state.timeline = Timeline(directory / "timeline")

    def record_metrics(record: RequestRecord) -> None:
        """Count the request; models no provider serves share one label."""
        balancer = state.holder.current.balancer
        state.metrics.observe_request(record, lambda model: bool(balancer.serving(model)))

    def publish_provider_states() -> None:
        state.metrics.set_provider_states(state.holder.current.balancer.snapshot())
        state.metrics.set_shared_state(state.holder.current.store.status())

    state.request_observers += [record_metrics, state.timeline.observe]
    state.publisher = Publisher([state.timeline.flush, publish_provider_states])
    if start_threads:
        state.monitor.start()
        state.publisher.start()


def register_cli(app: Flask) -> None:
    """`flask --app app check-config [PATH]` and `flask --app app probe [PATH]`."""
    env_files = click.option(
        "--env-file", "env_files", multiple=True, metavar="FILE",
        help="Read variables from a systemd EnvironmentFile first (may be repeated).")

    @app.cli.command("check-config")
    @click.argument("path", required=False)
    @env_files
    def check_config(path: str | None, env_files: tuple[str, ...]) -> None:
        """Validate a providers file without starting the service; exit 1 if nothing is enabled."""
        target = path or app.extensions["loadbalancer"].providers_file
        config, warnings = _load_for_cli(target, env_files)
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        for provider in config.providers:
            state = "enabled" if provider.enabled else f"disabled ({provider.disabled_reason})"
            click.echo(f"{provider.name}: {provider.type} {state}")
        enabled = sum(1 for provider in config.providers if provider.enabled)
        if not enabled:
            click.echo(f"{target}: no provider is enabled: the service could answer no request", err=True)
            sys.exit(1)
        click.echo(f"{target}: OK ({enabled} of {len(config.providers)} providers enabled)")

    @app.cli.command("probe")
    @click.argument("path", required=False)
    @env_files
    def probe(path: str | None, env_files: tuple[str, ...]) -> None:
        """Probe every provider; exit 0 only when every enabled one answers 2xx with its key accepted."""
        from health import probe_all, probe_table
        config, _ = _load_for_cli(path or app.extensions["loadbalancer"].providers_file, env_files)
        runtime = Runtime.build(config)
        lines, all_usable = probe_table(runtime, probe_all(runtime))
        click.echo("\n".join(lines))
        sys.exit(0 if all_usable else 1)


def _load_for_cli(path: str, env_files: tuple[str, ...]) -> tuple:
    """The configuration and its warnings, with the env files' variables; one line and exit 1 on error."""
    environ = dict(os.environ)
    try:
        for env_file in env_files:
            environ.update(read_environment_file(env_file))
        return inspect_config(path, environ)
    except (ConfigError, EnvironmentFileError) as err:
        click.echo(str(err), err=True)
        sys.exit(1)
