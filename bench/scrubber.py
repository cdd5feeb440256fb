"""What the secret scrubber costs on each path: stream chunks, error bodies, log lines.

    .venv/bin/python bench/scrubber.py

Prints microseconds per operation for a configuration of 4 providers (key plus one header
each) and 4 client keys, the secrets a typical providers.json holds.
"""
from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadbalancer.secrets import SecretScrubber  # noqa: E402

SECRETS = [f"sk-provider-key-{n:04d}-abcdefghijklmnop" for n in range(4)] + \
          [f"header-secret-{n:04d}-qrstuvwx" for n in range(4)] + [f"client-key-{n:04d}-yz0123456" for n in range(4)]
DELTA = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
         b'"delta":{"type":"text_delta","text":"Here is the next part of the answer, about sixty bytes."}}\n\n')
ERROR_BODY = (b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key '
              + SECRETS[0].encode() + b'"}}')
CLEAN_ERROR = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
LOG_LINE = ("request_id=req_0123456789abcdef01234567 POST /v1/messages model=claude-sonnet-4-5 stream=yes "
            "status=200 provider=anthropic tried=anthropic:ok:812ms latency_ms=5123.4 first_byte_ms=812.0 "
            "tokens=1234/567")
ROUNDS = 20000


def per_call_us(function, rounds: int = ROUNDS) -> float:
    """Microseconds per call, best of 5."""
    return min(timeit.repeat(function, number=rounds, repeat=5)) / rounds * 1e6


def main() -> None:
    scrubber = SecretScrubber(lambda: SECRETS)
    chunks = [DELTA] * 100
    figures = {
        "stream: 100 content chunks through scrubber.stream (per chunk)":
            per_call_us(lambda: list(scrubber.stream(iter(chunks))), ROUNDS // 100) / 100,
        "stream: 100 content chunks, no scrubber (per chunk)":
            per_call_us(lambda: list(iter(chunks)), ROUNDS // 100) / 100,
        "error body without a secret (JSON)": per_call_us(lambda: scrubber.json_bytes(CLEAN_ERROR)),
        "error body quoting a key (JSON, re-encoded)": per_call_us(lambda: scrubber.json_bytes(ERROR_BODY)),
        "access log line without a secret": per_call_us(lambda: scrubber.text(LOG_LINE)),
    }
    for name, value in figures.items():
        print(f"{name:66} {value:7.2f} µs")


if __name__ == "__main__":
    main()
