"""A slow fake Anthropic upstream: SSE streams whose events are spaced in time.

Each POST to /v1/messages answers with a stream whose text deltas come `interval` apart;
every delta's text starts with `ts=<CLOCK_MONOTONIC seconds>;`, the moment it was sent, so
a client on the same machine can measure what a proxy between them adds to each event.
The request's model name chooses the pacing: `slow-<interval_ms>-<deltas>` (default 250 ms,
40 deltas: one event every 250 ms for 10 s).

    python bench/slow_upstream.py --port 18081
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import time

DEFAULT_INTERVAL_MS = 250
DEFAULT_DELTAS = 40
MAX_DELTAS = 10_000
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
_MODEL_PACING = re.compile(r"slow-(\d+)-(\d+)")
_MODELS_BODY = json.dumps({"data": [{"type": "model", "id": "slow-250-40"}], "has_more": False}).encode()


def event_frame(event: dict) -> bytes:
    """One Anthropic SSE frame."""
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def http_chunk(data: bytes) -> bytes:
    """One chunk of a chunked HTTP/1.1 body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def pacing_for(body: bytes) -> tuple[float, int]:
    """Interval (seconds) and number of deltas chosen by the request's model name."""
    try:
        model = str(json.loads(body).get("model", ""))
    except (ValueError, AttributeError):
        model = ""
    match = _MODEL_PACING.fullmatch(model)
    if not match:
        return DEFAULT_INTERVAL_MS / 1000, DEFAULT_DELTAS
    return int(match.group(1)) / 1000, min(int(match.group(2)), MAX_DELTAS)


async def send_stream(writer: asyncio.StreamWriter, interval: float, deltas: int) -> None:
    """Write the paced SSE answer; each delta carries the moment it was written."""
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                 b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
    start = {"type": "message_start", "message": {
        "id": "msg_slow", "type": "message", "role": "assistant", "model": "slow", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}
    writer.write(http_chunk(event_frame(start) + event_frame(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})))
    await writer.drain()
    began = time.monotonic()
    for number in range(deltas):
        # Sleep to an absolute schedule so the spacing does not drift under load.
        await asyncio.sleep(max(0.0, began + (number + 1) * interval - time.monotonic()))
        text = f"ts={time.monotonic():.6f}; token {number} "
        writer.write(http_chunk(event_frame(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})))
        await writer.drain()
    writer.write(http_chunk(
        event_frame({"type": "content_block_stop", "index": 0})
        + event_frame({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": deltas}})
        + event_frame({"type": "message_stop"})))
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    """Method, path and body of the next request on a keep-alive connection (None at EOF)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = min(int(value.strip()), MAX_BODY_BYTES)
    body = await reader.readexactly(length) if length else b""
    return method, path, body


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer requests on one connection until the peer closes it."""
    try:
        while (request := await read_request(reader)) is not None:
            method, path, body = request
            if method == "POST" and path.endswith("/v1/messages"):
                interval, deltas = pacing_for(body)
                await send_stream(writer, interval, deltas)
            elif method == "GET" and path.endswith("/models"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(_MODELS_BODY), _MODELS_BODY))
                await writer.drain()
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass  # the proxy went away mid-stream: nothing to answer any more
    finally:
        writer.close()


def raise_open_file_limit() -> None:
    """Thousands of streams need thousands of descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main(port: int) -> None:
    """Serve until killed."""
    server = await asyncio.start_server(serve_connection, "127.0.0.1", port, backlog=4096,
                                        limit=MAX_HEADER_BYTES)
    print(f"slow upstream on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    raise_open_file_limit()
    asyncio.run(main(parser.parse_args().port))
