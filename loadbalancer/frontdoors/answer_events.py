"""What the front doors share: the Anthropic events of an answer stream, batch by batch.

Every provider type answers a front door in the Anthropic dialect; a front door translates
those events into its own client's dialect as they arrive.
"""

from __future__ import annotations

from typing import Iterator

from loadbalancer.sse import SSEDecoder

PING_COMMENT = b": ping\n\n"  # an SSE comment keeps the connection alive; clients ignore it


def stream_frames(body: bytes | Iterator[bytes]) -> Iterator[bytes]:
    """An answer body as stream chunks (a stream that ended before content comes as one body)."""
    return iter([body]) if isinstance(body, bytes) else body


def event_batches(frames: Iterator[bytes]) -> Iterator[list[dict | None]]:
    """The Anthropic events each chunk completes (None for a ping); closes the upstream at the end."""
    decoder = SSEDecoder()
    try:
        for data in frames:
            batch = [None if frame.event == "ping" else frame.json() for frame in decoder.feed(data)]
            if batch:
                yield batch
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
