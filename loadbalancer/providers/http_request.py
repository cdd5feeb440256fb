"""An upstream request's head, written with the checks http.client and urllib3 make, in fewer steps.

urllib3 writes each header through two `putheader` layers (its own looks for its skip marker,
http.client's encodes and checks the name and value), after a set of the lowered names and a
look at the body's type to settle its framing. A provider request always comes the same way:
bytes with a Content-Length (`ProviderClient` sets it). For that request the lines below are
byte for byte what urllib3 would send, and a name or value either would refuse is refused
here with the same error. Every other request (no length, a chunked or streamed body) is
urllib3's own.

A small body also goes out in the same write as the head: one send and one TCP segment
instead of two (a large body is sent on its own, as http.client sends it, not copied).
"""

from __future__ import annotations

import re
from typing import Mapping

import urllib3
from urllib3.util import SKIP_HEADER
from urllib3.util.request import SKIPPABLE_HEADERS

# http.client's checks of a header name and value (`_is_legal_header_name`, `_is_illegal_header_value`).
_LEGAL_HEADER_NAME = re.compile(rb"[^:\s][^:\r\n]*").fullmatch
_ILLEGAL_HEADER_VALUE = re.compile(rb"\n(?![ \t])|\r(?![ \t\n])").search
DEFAULT_USER_AGENT = f"python-urllib3/{urllib3.__version__}"  # what urllib3 sends when none is given
# Up to this size the body is copied behind the head and both go out in one write.
ONE_WRITE_BODY_BYTES = 64 * 1024


def takes_plain_framing(body: object, headers: Mapping[str, str] | None, chunked: bool) -> frozenset[str] | None:
    """The lowered header names when this request is bytes framed by its own Content-Length; else None."""
    if chunked or headers is None or body.__class__ is not bytes:
        return None
    names = frozenset(name.lower() for name in headers)
    if "content-length" not in names or "transfer-encoding" in names:
        return None
    return names


def header_lines(headers: Mapping[str, str], names: frozenset[str]) -> list[bytes]:
    """The header lines urllib3 writes after the request line (and Host), in its order."""
    lines = [] if "user-agent" in names else [b"User-Agent: " + DEFAULT_USER_AGENT.encode("latin-1")]
    for name, value in headers.items():
        line = header_line(name, value)
        if line is not None:
            lines.append(line)
    return lines


def header_line(name: str, value: object) -> bytes | None:
    """One `name: value` line, or None for a header urllib3's skip marker leaves out.

    ValueError for what http.client refuses: a name that is empty, holds a colon, a blank or a
    line break; a value with a line break that does not continue it (header injection).
    """
    if value.__class__ is str and value == SKIP_HEADER:
        if name.lower() in SKIPPABLE_HEADERS:
            return None
        skippable = "', '".join(str.title(header) for header in sorted(SKIPPABLE_HEADERS))
        raise ValueError(f"urllib3.util.SKIP_HEADER only supports '{skippable}'")
    encoded_name = name.encode("ascii") if hasattr(name, "encode") else name
    if not _LEGAL_HEADER_NAME(encoded_name):
        raise ValueError(f"Invalid header name {encoded_name!r}")
    if hasattr(value, "encode"):
        encoded_value = value.encode("latin-1")
    elif isinstance(value, int):
        encoded_value = str(value).encode("ascii")
    else:
        encoded_value = value
    if _ILLEGAL_HEADER_VALUE(encoded_value):
        raise ValueError(f"Invalid header value {encoded_value!r}")
    return encoded_name + b": " + encoded_value
