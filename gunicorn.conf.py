"""gunicorn settings for the load balancer (`gunicorn -c gunicorn.conf.py 'app:create_app()'`).

Every setting can be overridden on the command line (`-b`, `-w`, `-k`, ...) or through the
environment variables named below. See the README for why gevent was chosen.
"""

import gc
import ipaddress
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the worker class lives in the package

# Worker class: gevent, so one worker holds hundreds of long streams, each a cheap greenlet
# (measured in bench/RESULTS.md), in the project's worker that bounds slow clients and answers
# 503 when full (loadbalancer/serving/worker.py). LB_WORKER_CLASS=gthread switches to threads.
WORKER_CLASSES = {"gevent": "loadbalancer.serving.worker.LoadBalancerWorker"}
worker_choice = os.environ.get("LB_WORKER_CLASS", "gevent")
worker_class = WORKER_CLASSES.get(worker_choice, worker_choice)
if worker_choice == "gevent":
    # Patch before anything imports ssl/socket/threading: patching later breaks TLS to
    # providers (RecursionError in ssl) and leaves blocking locks in imported modules.
    from gevent import monkey

    monkey.patch_all()

# Workers share a state directory (provider state, rate-limit windows, probe results, metrics). It
# must be in the environment before any process imports prometheus_client, and a HUP reload
# re-runs this file: keep what an earlier run set.
if not os.environ.get("LB_STATE_DIR"):
    os.environ["LB_STATE_DIR"] = tempfile.mkdtemp(prefix="anthropic-lb-")
    os.environ["LB_STATE_DIR_AUTO"] = "1"  # ours to delete on exit
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(os.environ["LB_STATE_DIR"], "prometheus"))

bind = os.environ.get("LB_BIND", "127.0.0.1:9000")
workers = int(os.environ.get("LB_WORKERS", "2"))
# gevent: open connections per worker; gthread: threads per worker.
worker_connections = int(os.environ.get("LB_WORKER_CONNECTIONS", "2000"))
threads = int(os.environ.get("LB_THREADS", "64"))

# A stream may legitimately run for minutes (G3 allows 300 s; Claude Code 600 s). For
# gevent/gthread workers `timeout` is only the heartbeat of a hung worker, not a request
# limit, but graceful_timeout bounds how long a reload waits for open streams.
timeout = int(os.environ.get("LB_TIMEOUT", "660"))
graceful_timeout = int(os.environ.get("LB_GRACEFUL_TIMEOUT", "660"))
keepalive = 75

# The Messages API carries large headers (anthropic-beta lists, Claude Code's session ids).
# The app caps the total at limits.max_header_bytes (64 KiB by default) with a JSON 413;
# gunicorn's own per-line and count limits sit above that so its plain-text 400 stays rare.
limit_request_field_size = int(os.environ.get("LB_LIMIT_REQUEST_FIELD_SIZE", str(128 * 1024)))
limit_request_fields = 500
limit_request_line = 8190

accesslog = None  # the app writes one richer line per request itself
errorlog = "-"
# gunicorn's own lines in the service's format: JSON with LOG_FORMAT=json, else logfmt; UTC times.
logger_class = "loadbalancer.ops.gunicorn_logging.GunicornLogger"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "anthropic-loadbalancer"


def on_starting(server):
    """Validate providers.json and the client time limits once in the master (a bad value stops
    the start with one line) and raise the open-file limit."""
    from app import providers_file_path
    from config import ConfigError, inspect_config
    from loadbalancer.serving.connection import ClientTimeouts

    try:
        config, warnings = inspect_config(providers_file_path(None))
        ClientTimeouts.from_environ(os.environ, keepalive)  # what the workers will read
    except (ConfigError, ValueError) as err:
        server.log.error("configuration error: %s", err)  # one line, in the service's format
        os._exit(1)
    for warning in warnings:  # e.g. "$VAR" without braces, taken literally
        server.log.warning("configuration warning: %s", warning)
    # Said once here rather than once per worker; the workers inherit the marker.
    for provider in config.providers:
        if not provider.enabled:
            server.log.warning("provider %s disabled: %s", provider.name, provider.disabled_reason)
    os.environ["LB_DISABLED_PROVIDERS_LOGGED"] = "1"

    _raise_open_file_limit(server)
    _reset_shared_state()


def _raise_open_file_limit(server):
    """Soft RLIMIT_NOFILE up to the hard one (the workers inherit it); warn when still too low."""
    from loadbalancer.serving.open_files import files_needed_per_worker, raise_open_file_limit

    limit = raise_open_file_limit()
    if limit.raised:
        server.log.info("open-file limit raised from %d to %d (the hard limit)", limit.before, limit.after)
    needed = files_needed_per_worker(worker_connections)
    if limit.after < needed:
        server.log.warning("open-file limit %d is below the %d files a worker needs for %d connections "
                           "(2 each: client and provider): raise LimitNOFILE (ulimit -n) or lower "
                           "LB_WORKER_CONNECTIONS", limit.after, needed, worker_connections)


def _reset_shared_state():
    """Start from an empty metrics directory and no provider state or probe results of a previous run."""
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(metrics_dir, exist_ok=True)
    for name in os.listdir(metrics_dir):
        if name.endswith((".db", ".db.partial")):  # only the metrics files: the dir may be shared
            os.remove(os.path.join(metrics_dir, name))
    # The embedded store (loadbalancer/routing/state/embedded.py); a HUP keeps it, a restart does not.
    shutil.rmtree(os.path.join(os.environ["LB_STATE_DIR"], "provider-state"), ignore_errors=True)


def when_ready(server):
    """Warn when the service listens beyond loopback with no inbound key configured."""
    from app import providers_file_path
    from config import ConfigError, load_config

    try:
        keys = load_config(providers_file_path(None)).auth.api_keys
    except ConfigError:
        return  # on_starting already refused to start with a broken file
    exposed = [address for address in server.cfg.address if not _is_loopback(address)]
    if exposed and not keys:
        server.log.warning("listening on %s without any inbound API key (auth.api_keys): anyone who "
                           "can reach it spends your provider credit", ", ".join(map(str, exposed)))


def _is_loopback(address):
    """A unix socket or a loopback host."""
    if not isinstance(address, tuple):
        return True  # unix socket: reachable only on this machine
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it resolves beyond loopback


def child_exit(server, worker):
    """Fold a dead worker's metrics into the aggregate files, so their number stays bounded."""
    from loadbalancer.ops.metrics_files import merge_dead_worker

    merge_dead_worker(os.environ["PROMETHEUS_MULTIPROC_DIR"], worker.pid)


def on_exit(server):
    """Remove the state directory when this run created it."""
    if os.environ.get("LB_STATE_DIR_AUTO") == "1":
        shutil.rmtree(os.environ["LB_STATE_DIR"], ignore_errors=True)


def post_worker_init(worker):
    """Freeze what loading the app made, so the collector's full passes skip it.

    A worker tracks tens of thousands of objects once Flask, requests, gevent and the
    configuration are loaded (43,000 for the app alone); they live as long as the worker. A
    request that builds an agent-sized body as Python objects (some 400 dicts and lists for a
    270 KB turn) brings the next full collection sooner, and each one walked all of those:
    the 99th percentile of 270 KB requests was 18-24 ms with them and 3-9 ms frozen, in the
    same A/B. Frozen, a full pass walks only what requests made since (the first
    configuration's objects stay for good, even once a reload replaced them: one set's worth).

    Request-sized buffers are kept in the C heap between requests (loadbalancer/serving/
    large_buffers.py): a 1 MB turn otherwise faulted in fresh pages, a third of its CPU.
    """
    from loadbalancer.serving.large_buffers import keep_large_buffers_in_heap

    keep_large_buffers_in_heap()
    gc.freeze()
