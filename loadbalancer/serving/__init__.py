"""Serving: where the service meets its clients' sockets, below the WSGI app.

The gunicorn worker class the service runs (`worker.LoadBalancerWorker`), the time limits of
one client connection (`connection`), the answers written straight to a socket when the
app cannot be reached at all (`raw_answers`), and the process settings the service makes for
itself (`open_files`, `large_buffers`). May import the primitives only (errors, request ids);
nothing in the package imports serving.
"""
