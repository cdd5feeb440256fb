"""A request body with a Content-Length, read in large pieces.

gunicorn's `Body.read` pulls a Content-Length body through its reader 1 KiB at a time, each
piece sliced out of an 8 KiB socket read and the rest pushed back: for a 270 KB agent turn
that is about 270 Python-level reads, 33 socket reads and 2 MB of copying, a fifth of the
request's time in py-spy. `LengthBody` takes what gunicorn's parser already buffered past the
headers, then receives the rest with large reads through the same `ClientConnection`, so the
body's time limits still apply. Chunked bodies keep gunicorn's reader.
"""

from __future__ import annotations

from typing import Any, Iterator

from gunicorn.http.body import LengthReader

RECEIVE_BYTES = 256 * 1024  # one socket read; a 270 KB body arrives in two or three


class LengthBody:
    """The `wsgi.input` of a request whose body length is known."""

    def __init__(self, unreader: Any, sock: Any, length: int) -> None:
        self._socket = sock
        self._pending = b""  # body bytes received but not yet read by the app
        self._unreceived = length  # body bytes still in the socket
        self._take_parser_buffer(unreader)

    @classmethod
    def replacing(cls, request: Any, sock: Any) -> None:
        """Put a LengthBody in place of gunicorn's body reader when the request has a Content-Length."""
        reader = getattr(request.body, "reader", None)
        if isinstance(reader, LengthReader):
            request.body = cls(reader.unreader, sock, reader.length)

    def read(self, size: int | None = None) -> bytes:
        """Up to `size` bytes of the body (all that is left when None or negative)."""
        wanted = self._unreceived + len(self._pending) if size is None or size < 0 else size
        parts = [self._take_pending(wanted)]
        wanted -= len(parts[0])
        while wanted > 0 and self._unreceived > 0:
            data = self._receive(min(wanted, RECEIVE_BYTES))
            if not data:
                break  # the client closed early: the app sees a short body, as with gunicorn's reader
            parts.append(data)
            wanted -= len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self, size: int | None = None) -> bytes:
        """One line of the body (WSGI asks for it; JSON bodies never use it)."""
        limit = None if size is None or size < 0 else size
        while b"\n" not in self._pending and self._unreceived > 0 and \
                (limit is None or len(self._pending) < limit):
            data = self._receive(RECEIVE_BYTES)
            if not data:
                break
            self._pending += data
        end = self._pending.find(b"\n") + 1 or len(self._pending)
        return self._take_pending(end if limit is None else min(end, limit))

    def readlines(self, hint: int | None = None) -> list[bytes]:
        """Every remaining line."""
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def _take_parser_buffer(self, unreader: Any) -> None:
        """Keep what gunicorn's parser read past the headers; give back what is past this body."""
        if self._unreceived <= 0:
            return
        data = unreader.read()  # the buffered bytes, or one socket read when there were none
        if len(data) > self._unreceived:
            unreader.unread(data[self._unreceived:])  # a pipelined next request, left for the parser
            data = data[:self._unreceived]
        self._pending = data
        self._unreceived -= len(data)

    def _take_pending(self, size: int) -> bytes:
        if size >= len(self._pending):
            taken, self._pending = self._pending, b""
            return taken
        taken, self._pending = self._pending[:size], self._pending[size:]
        return taken

    def _receive(self, size: int) -> bytes:
        """At most `size` more bytes of the body from the socket (never past its end)."""
        data = self._socket.recv(min(size, self._unreceived))
        self._unreceived -= len(data)
        return data
