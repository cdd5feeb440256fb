"""The secret scrubber: every written form of every secret replaced, JSON kept valid, the rest untouched."""
from __future__ import annotations

import json
import logging
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadbalancer.ops.logging_setup import JsonLineFormatter, LogfmtFormatter, SecretLogFilter
from loadbalancer.request_record import ACCESS_FIELDS
from loadbalancer.secrets import MIN_SECRET_LENGTH, REDACTED, SecretScrubber, written_forms

PLAIN = "sk-ant-api03-PLAINsecret0123"
SPECIAL = 'pa"ss\\wo/rd+é ü&='  # quotes, backslash, slash, plus, non-ASCII, URL specials


def scrubber(*secrets: str) -> SecretScrubber:
    return SecretScrubber(lambda: secrets)


@pytest.mark.parametrize("written", [
    PLAIN,
    f"invalid x-api-key {PLAIN}",
    f"Incorrect API key provided: {PLAIN}. You can find your API key at ...",
    f"key={quote(PLAIN, safe='')}&x=1",
])
def test_a_secret_is_replaced_wherever_it_is_written_in_text(written: str) -> None:
    clean = scrubber(PLAIN).text(written)
    assert PLAIN not in clean and REDACTED in clean


@pytest.mark.parametrize("form", [
    SPECIAL,                                   # raw
    json.dumps(SPECIAL)[1:-1],                 # JSON with \u escapes
    orjson.dumps(SPECIAL).decode()[1:-1],      # JSON with raw UTF-8
    repr(SPECIAL)[1:-1],                       # a Python repr in a log line
    quote(SPECIAL, safe=""),                   # a URL query
])
def test_every_written_form_of_a_secret_with_special_characters_is_found(form: str) -> None:
    assert scrubber(SPECIAL).text(f"before {form} after") == f"before {REDACTED} after"


def test_json_stays_valid_and_only_the_secret_changes() -> None:
    body = orjson.dumps({"type": "error", "error": {"type": "authentication_error",
                                                    "message": f"invalid key {SPECIAL}", SPECIAL: [PLAIN, 5]}})
    clean = scrubber(SPECIAL, PLAIN).json_bytes(body)
    assert orjson.loads(clean) == {"type": "error", "error": {
        "type": "authentication_error", "message": f"invalid key {REDACTED}", REDACTED: [REDACTED, 5]}}


def test_a_body_without_secrets_is_returned_as_the_same_object() -> None:
    body = b'{"type":"error","error":{"message":"nothing to see"}}'
    assert scrubber(PLAIN).json_bytes(body) is body
    assert scrubber(PLAIN).body(body, "text/plain") is body


def test_json_too_deep_to_re_encode_is_scrubbed_as_text() -> None:
    body = b"[" * 600 + json.dumps(PLAIN).encode() + b"]" * 600
    clean = scrubber(PLAIN).json_bytes(body)
    assert PLAIN.encode() not in clean and orjson.loads(clean)  # still JSON: the secret sat inside a string


def test_sse_error_events_are_scrubbed_in_both_shapes() -> None:
    anthropic = (b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"bad key '
                 + PLAIN.encode() + b'"}}\n\n')
    openai = b'data: {"error":{"message":"Incorrect API key provided: ' + PLAIN.encode() + b'"}}\n\ndata: [DONE]\n\n'
    for frame in (anthropic, openai):
        clean = scrubber(PLAIN).sse_bytes(frame)
        assert PLAIN.encode() not in clean
        payloads = [line[6:] for line in clean.split(b"\n") if line.startswith(b"data: ")]
        assert all(payload == b"[DONE]" or orjson.loads(payload) for payload in payloads)


def test_a_stream_passes_content_chunks_untouched_and_closes_what_it_wraps() -> None:
    closed = []

    def chunks():
        try:
            yield b'event: content_block_delta\ndata: {"text":"' + PLAIN.encode() + b'"}\n\n'
            yield b'event: error\ndata: {"type":"error","error":{"message":"' + PLAIN.encode() + b'"}}\n\n'
        finally:
            closed.append(True)

    first, second = list(scrubber(PLAIN).stream(chunks()))
    assert PLAIN.encode() in first  # a provider's content is not read (the happy path stays fast)
    assert PLAIN.encode() not in second
    assert closed == [True]


def test_secrets_are_asked_for_at_each_scrub_so_new_tokens_are_found() -> None:
    tokens = ["ya29.first-access-token"]
    scrub = SecretScrubber(lambda: tokens)
    assert REDACTED in scrub.text("Bearer ya29.first-access-token")
    tokens[0] = "ya29.second-access-token"
    assert scrub.text("Bearer ya29.second-access-token") == f"Bearer {REDACTED}"
    assert scrub.text("Bearer ya29.first-access-token") == "Bearer ya29.first-access-token"


def test_values_too_short_to_be_told_from_words_are_left_alone() -> None:
    short = "x" * (MIN_SECRET_LENGTH - 1)
    assert scrubber(short).text(f"a {short} b") == f"a {short} b"


def test_a_longer_secret_containing_a_shorter_one_is_replaced_whole() -> None:
    assert scrubber("abcdefgh", "abcdefgh-longer").text("k=abcdefgh-longer") == f"k={REDACTED}"


def _record(message: str, *args: object, name: str = "loadbalancer") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, args, None)


def test_the_log_filter_scrubs_messages_arguments_and_tracebacks() -> None:
    log_filter = SecretLogFilter(lambda: scrubber(PLAIN))
    record = _record("upstream said %r", f"bad key {PLAIN}")
    try:
        raise KeyError(PLAIN)
    except KeyError:
        import sys
        record.exc_info = sys.exc_info()
    assert log_filter.filter(record)
    line = logging.Formatter("%(message)s").format(record)
    assert PLAIN not in line and REDACTED in line and "KeyError" in line


def test_access_lines_stay_structured_after_scrubbing() -> None:
    log_filter = SecretLogFilter(lambda: scrubber(SPECIAL))
    record = _record("request", name="loadbalancer.access")
    setattr(record, ACCESS_FIELDS, {"error": f"all failed: {SPECIAL}", "tried": [{"provider": SPECIAL}]})
    log_filter.filter(record)
    payload = json.loads(JsonLineFormatter().format(record))
    assert payload["error"] == f"all failed: {REDACTED}" and payload["tried"] == [{"provider": REDACTED}]
    assert SPECIAL not in LogfmtFormatter().format(record)


class _StubProvider:
    """What the runtime's secret source reads of a provider."""

    def __init__(self, values: list[str], changing: bool) -> None:
        self.values, self.secrets_change, self.asked = values, changing, 0

    def secret_values(self) -> tuple[str, ...]:
        self.asked += 1
        return tuple(self.values)


def test_fixed_secrets_are_gathered_once_and_changing_ones_at_every_scrub() -> None:
    from loadbalancer.runtime import _secret_source
    from loadbalancer.settings.records import Config

    fixed = _StubProvider(["sk-fixed-provider-key"], changing=False)
    token = _StubProvider(["ya29.first-access-token"], changing=True)
    source = _secret_source(Config(providers=()), {"fixed": fixed, "cloud": token}, ("sk-retired-key-1",))
    scrub = SecretScrubber(source)
    assert scrub.text("sk-fixed-provider-key ya29.first-access-token sk-retired-key-1") == \
        f"{REDACTED} {REDACTED} {REDACTED}"
    token.values[0] = "ya29.second-access-token"
    assert scrub.text("Bearer ya29.second-access-token") == f"Bearer {REDACTED}"
    assert (fixed.asked, token.asked) == (1, 2)  # the fixed key was read when the runtime was built

    only_fixed = _secret_source(Config(providers=()), {"fixed": fixed}, ())
    assert only_fixed() is only_fixed()  # the same tuple: the scrubber reuses its patterns at once


SECRET_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")


@settings(max_examples=300, deadline=None)
@given(secret=st.text(SECRET_CHARACTERS, min_size=MIN_SECRET_LENGTH, max_size=14),
       form_of=st.sampled_from([str, lambda s: json.dumps(s)[1:-1], lambda s: repr(s)[1:-1],
                                lambda s: quote(s, safe="")]),
       where=st.sampled_from(["key", "value", "nested", "list"]),
       around=st.text(max_size=4))
def test_a_record_holding_any_form_of_any_secret_is_scrubbed(secret: str, form_of, where: str, around: str) -> None:
    """The one-search test over a whole record misses no string, whatever the secret's characters."""
    written = f"{around}{form_of(secret)}{around}"
    record = {"request_id": "req_1", "status": 200, "tried": [{"provider": "a", "ms": 3}]}
    if where == "key":
        record[written] = 1
    elif where == "value":
        record["error"] = written
    elif where == "nested":
        record["text_tool_calls"] = {"note": written}
    else:
        record["tried"].append({"provider": written})
    clean = scrubber(secret).json_value(record)
    assert clean is not record
    assert all(form not in text for text in strings_in(clean) for form in written_forms(secret))


def test_a_record_orjson_cannot_encode_is_still_searched() -> None:
    record = {1: "int key", "error": f"key {PLAIN}"}  # orjson refuses keys that are not strings
    assert scrubber(PLAIN).json_value(record) == {1: "int key", "error": f"key {REDACTED}"}
    untouched = {1: "int key", "error": "fine"}
    assert scrubber(PLAIN).json_value(untouched) is untouched


def strings_in(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [*strings_in(key), *strings_in(item)]]
    return []
