"""What a request needs from a provider: model, size, images, thinking.

Pure: taken from the fields `client_request` read when it checked the body, before the
balancer plans attempts (the body is never walked again for it).
"""

from __future__ import annotations

from dataclasses import dataclass

from loadbalancer.client_request import MessagesRequest

BYTES_PER_TOKEN = 4


@dataclass(frozen=True)
class RequestNeeds:
    """What a request needs from a provider."""

    model: str
    estimated_input_tokens: int = 0
    max_tokens: int = 0
    has_images: bool = False
    wants_thinking: bool = False

    @classmethod
    def from_request(cls, request: MessagesRequest) -> RequestNeeds:
        """What a validated request needs; the token estimate is its size, about four bytes a token."""
        return cls(model=request.model, estimated_input_tokens=len(request.raw) // BYTES_PER_TOKEN,
                   max_tokens=request.max_tokens, has_images=request.has_images,
                   wants_thinking=request.wants_thinking)
