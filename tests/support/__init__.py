"""Integration-test harness: scriptable fake backends and the load balancer as a real gunicorn process."""
