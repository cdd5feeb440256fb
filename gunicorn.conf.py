"""gunicorn settings for the load balancer (`gunicorn -c gunicorn.conf.py 'app:create_app()'`).

Every setting can be overridden on the command line (`-b`, `-w`, `-k`, ...) or through the
environment variables named below. See the README for why gevent was chosen.
"""

import os
import sys

# Worker class: gevent, so one worker holds hundreds of long streams, each a cheap greenlet
# (measured in bench/RESULTS.md). LB_WORKER_CLASS=gthread switches to threads.
worker_class = os.environ.get("LB_WORKER_CLASS", "gevent")
if worker_class == "gevent":
    # Patch before anything imports ssl/socket/threading: patching later breaks TLS to
    # providers (RecursionError in ssl) and leaves blocking locks in imported modules.
    from gevent import monkey

    monkey.patch_all()

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
limit_request_field_size = 16384
limit_request_line = 8190

accesslog = None  # the app writes one richer line per request itself
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "anthropic-loadbalancer"


def on_starting(server):
    """Validate providers.json once in the master: a bad file stops the start with one line."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from app import providers_file_path
    from config import ConfigError, load_config

    try:
        load_config(providers_file_path(None))
    except ConfigError as err:
        sys.stderr.write(f"configuration error: {err}\n")
        sys.stderr.flush()
        os._exit(1)
