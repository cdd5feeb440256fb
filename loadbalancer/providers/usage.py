"""What an answer reports besides its content: tokens, prompt-cache use and why it stopped.

Read from either dialect. A count that is not an integer counts as nothing; a `usage`,
`message` or `delta` that is there but not an object is a malformed answer (TypeError, which
`providers.base.reading_answer_of` turns into a bad response: failover, or a clean error event).
"""

from __future__ import annotations

from dataclasses import dataclass

from loadbalancer.request_record import AnswerUsage


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _object(value: object) -> dict:
    """The member as an object; absent or null is empty; anything else is a malformed answer."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def anthropic_answer_usage(message: dict) -> AnswerUsage:
    """The usage of an Anthropic message (a non-stream answer)."""
    usage = _object(message.get("usage"))
    return AnswerUsage(_count(usage.get("input_tokens")), _count(usage.get("output_tokens")),
                       _count(usage.get("cache_read_input_tokens")),
                       _count(usage.get("cache_creation_input_tokens")), _text(message.get("stop_reason")))


def openai_answer_usage(completion: dict) -> AnswerUsage:
    """The usage of an OpenAI chat completion passed on to an OpenAI client."""
    tracker = StreamUsage()
    tracker.observe_openai_chunk(completion)
    return tracker.as_answer_usage()


@dataclass
class StreamUsage:
    """Usage gathered from a stream's events as they pass."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    stop_reason: str | None = None

    def observe_anthropic_event(self, event_type: str, event: dict) -> None:
        """Take usage from `message_start` and `message_delta` (later counts replace earlier)."""
        if event_type == "message_start":
            self._take_anthropic(_object(_object(event.get("message")).get("usage")))
        elif event_type == "message_delta":
            self._take_anthropic(_object(event.get("usage")))
            self.stop_reason = _text(_object(event.get("delta")).get("stop_reason")) or self.stop_reason

    def observe_openai_chunk(self, chunk: dict) -> None:
        """Take usage and the finish reason from an OpenAI chunk (or a whole completion)."""
        usage = chunk.get("usage")
        if usage is not None:  # most chunks have none (or null): nothing to take then
            usage = _object(usage)
            self.input_tokens = _count(usage.get("prompt_tokens")) or self.input_tokens
            self.output_tokens = _count(usage.get("completion_tokens")) or self.output_tokens
            details = usage.get("prompt_tokens_details")  # an optional extra some servers fill oddly
            cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
            self.cache_read_tokens = cached or self.cache_read_tokens
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and _text(choice.get("finish_reason")):
                self.stop_reason = choice["finish_reason"]

    def as_answer_usage(self) -> AnswerUsage:
        """The usage as the request record takes it."""
        return AnswerUsage(self.input_tokens, self.output_tokens, self.cache_read_tokens,
                           self.cache_write_tokens, self.stop_reason)

    def _take_anthropic(self, usage: dict) -> None:
        self.input_tokens = _count(usage.get("input_tokens")) or self.input_tokens
        self.output_tokens = _count(usage.get("output_tokens")) or self.output_tokens
        self.cache_read_tokens = _count(usage.get("cache_read_input_tokens")) or self.cache_read_tokens
        self.cache_write_tokens = _count(usage.get("cache_creation_input_tokens")) or self.cache_write_tokens
