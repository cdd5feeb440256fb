"""Scanning a Messages body gives exactly what reading it whole gives.

`parse_messages_request` scans a large body (`body_scan`: fields taken, nothing else built)
and builds a small one, or takes one a front door built already, as a dict. Both readings
must agree on every field and on every refusal, for any body: checked with hypothesis over
bodies of every shape, written compactly, with escapes and with non-ASCII text, and over
those bodies broken by one byte, with the scan forced for every size.
"""
from __future__ import annotations

import json
import os

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadbalancer import body_scan, client_request
from loadbalancer.client_request import MessagesRequest, parse_messages_request
from loadbalancer.errors import LoadBalancerError
from loadbalancer.routing.affinity import affinity_key_for
from loadbalancer.settings.records import LimitsConfig

LIMITS = LimitsConfig(max_body_bytes=64 * 1024, max_messages=20, max_header_bytes=4096)
SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
FIELDS = ("model", "stream", "tools", "wants_thinking", "max_tokens", "has_images", "has_unsigned_thinking",
          "affinity_fields")

scalars = st.none() | st.booleans() | st.integers(-10, 10 ** 6) | st.text(max_size=6)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=12)
blocks = st.one_of(
    st.just(IMAGE), st.just({"type": "text", "text": "hi"}),
    st.builds(lambda signed: {"type": "thinking", "thinking": "hm", **({"signature": "s"} if signed else {})},
              st.booleans()),
    st.builds(lambda inner: {"type": "tool_result", "tool_use_id": "t", "content": inner},
              st.just([IMAGE]) | st.just("text") | json_values),
    # What the scan steps over: a tool call's input, written by the model.
    st.builds(lambda arguments: {"type": "tool_use", "id": "t", "name": "edit", "input": arguments}, json_values),
    json_values)
messages = st.builds(lambda role, content: {"role": role, "content": content},
                     st.sampled_from(["user", "assistant"]) | json_values,
                     st.text(max_size=5) | st.lists(blocks, max_size=4) | json_values)
bodies = st.fixed_dictionaries(
    {"model": st.just("claude-x") | json_values, "messages": st.lists(messages, max_size=4) | json_values},
    optional={"max_tokens": st.integers(-1, 64000) | json_values, "stream": st.booleans() | json_values,
              "system": st.text(max_size=5) | st.lists(blocks, max_size=2) | json_values,
              "tools": st.lists(st.dictionaries(st.text(max_size=4), json_values, max_size=2), max_size=2) | json_values,
              "thinking": st.sampled_from([{"type": "enabled"}, {"type": "adaptive"}, {"type": "disabled"}]) | json_values,
              "metadata": st.just({"user_id": "u-1"}) | json_values,
              "temperature": json_values})  # any field the load balancer does not read

# Bodies every check passes, so a broken byte is what decides (text where the scan steps over it).
valid_bodies = st.fixed_dictionaries(
    {"model": st.just("claude-x"), "max_tokens": st.integers(1, 64000),
     "messages": st.lists(st.builds(lambda role, content: {"role": role, "content": content},
                                    st.sampled_from(["user", "assistant"]), st.text(max_size=8) | st.lists(blocks, max_size=3)),
                          min_size=1, max_size=3)},
    optional={"temperature": json_values, "system": st.text(max_size=8)})

REAL_THRESHOLD = client_request.SCAN_FROM_BYTES
REAL_SHARED_FROM = body_scan.SHARED_READ_FROM_BYTES
NEVER = 1 << 62


@pytest.fixture(autouse=True)
def scan_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests here are about the scan; small bodies would otherwise be built instead, and
    their system prompts and tools read for each request rather than shared."""
    monkeypatch.setattr(client_request, "SCAN_FROM_BYTES", 0)
    monkeypatch.setattr(body_scan, "SHARED_READ_FROM_BYTES", 0)


def outcome(read) -> tuple:
    """The fields read, or the refusal's type, status and message."""
    try:
        request = read()
    except LoadBalancerError as err:
        return ("refused", type(err).__name__, err.status, err.message)
    return tuple(getattr(request, name) for name in FIELDS)


def encoded(body: dict, style: str) -> bytes:
    """The body as orjson writes it, as Python writes it with every non-ASCII character escaped, or spaced out."""
    if style == "escaped":
        return json.dumps(body, ensure_ascii=True).encode()
    if style == "spaced":
        return json.dumps(body, ensure_ascii=False, indent="\t", separators=(" ,\r\n", " : ")).encode()
    return orjson.dumps(body)


def built_whole(raw: bytes, count_tokens: bool) -> tuple:
    """What the orjson reading (no scan) makes of the same bytes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client_request, "SCAN_FROM_BYTES", NEVER)
        return outcome(lambda: parse_messages_request(raw, LIMITS, count_tokens=count_tokens))


@SETTINGS
@given(body=bodies, count_tokens=st.booleans(), style=st.sampled_from(["compact", "escaped", "spaced"]))
def test_the_scan_agrees_with_the_dict_reading(body: dict, count_tokens: bool, style: str) -> None:
    raw = encoded(body, style)
    from_bytes = outcome(lambda: parse_messages_request(raw, LIMITS, count_tokens=count_tokens))
    from_dict = outcome(lambda: parse_messages_request(raw, LIMITS, count_tokens=count_tokens,
                                                       decoded=orjson.loads(raw)))
    assert from_bytes == from_dict
    if from_bytes[0] != "refused" and isinstance(body.get("messages"), list):
        # The few fields kept for the conversation key give the key the whole body gives.
        request = parse_messages_request(raw, LIMITS, count_tokens=count_tokens)
        assert affinity_key_for(request.affinity_fields, {}) == affinity_key_for(body, {})


# Bytes that break JSON where they land (no digits or exponents: see the out-of-range case below).
BREAKING_BYTES = st.sampled_from([b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b"\x00", b"\x1f",
                                  b"\xff", b"\xc3", b"\xed\xa0\x80", b"\\ud800", b"n", b"t", b" "])


@SETTINGS
@given(body=valid_bodies | bodies, count_tokens=st.booleans(), style=st.sampled_from(["compact", "escaped"]),
       where=st.floats(0, 1), next_to_a_quote=st.booleans(), insert=BREAKING_BYTES, replace=st.booleans())
def test_a_body_broken_by_one_byte_gets_the_answer_the_orjson_reading_gives(
        body: dict, count_tokens: bool, style: str, where: float, next_to_a_quote: bool, insert: bytes,
        replace: bool) -> None:
    raw = encoded(body, style)
    # Half the breaks land just after a quote: inside a string (where the scan steps over most) or after one.
    places = [at + 1 for at, byte in enumerate(raw) if byte == ord('"')] if next_to_a_quote else range(len(raw))
    at = places[min(int(where * len(places)), len(places) - 1)]
    broken = raw[:at] + insert + raw[at + 1 if replace else at:]
    scanned = outcome(lambda: parse_messages_request(broken, LIMITS, count_tokens=count_tokens))
    assert scanned == built_whole(broken, count_tokens)


def request_of(**fields) -> MessagesRequest:
    body = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **fields}
    return parse_messages_request(json.dumps(body).encode(), LIMITS)


@pytest.mark.parametrize("message, images, unsigned", [
    ({"role": "user", "content": [IMAGE]}, True, False),
    ({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [IMAGE]}]}, True, False),
    ({"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}, False, True),
    ({"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "sig"}]}, False, False),
    ({"role": "user", "content": [{"type": "thinking", "thinking": "x"}]}, False, False),
])
def test_images_and_unsigned_thinking_are_noted_in_the_one_walk(message: dict, images: bool, unsigned: bool) -> None:
    request = request_of(messages=[{"role": "user", "content": "hi"}, message])
    assert (request.has_images, request.has_unsigned_thinking) == (images, unsigned)


def test_the_conversation_fields_hold_only_metadata_the_system_prompt_and_the_first_user_turn() -> None:
    request = request_of(system=[{"type": "text", "text": "be brief"}], metadata={"user_id": "u-9"},
                         messages=[{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"},
                                   {"role": "user", "content": "second"}])
    assert request.affinity_fields == {"metadata": {"user_id": "u-9"}, "system": [{"type": "text", "text": "be brief"}],
                                       "messages": [{"role": "user", "content": "first"}]}
    whole = orjson.loads(request.raw)
    assert affinity_key_for(request.affinity_fields, {}) == affinity_key_for(whole, {})


def test_the_whole_body_is_built_only_when_asked_for() -> None:
    request = request_of(temperature=0.5)
    assert "body" not in vars(request)  # nothing built yet
    assert request.body["temperature"] == 0.5
    assert request.tools == () and request.raw.startswith(b"{")


HI = b'"messages": [{"role": "user", "content": "hi"}]'


@pytest.mark.parametrize("raw", [
    b'{"model": "m", "max_tokens": 1, "n": 123456789012345678901234567890, ' + HI + b'}',
    b'\xef\xbb\xbf{"model": "m", "max_tokens": 1, ' + HI + b'}',
    b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "\xff"}]}',
    b'{"model": "m", "max_tokens": 1, "tool_input": "caf\xc3", ' + HI + b'}',  # cut UTF-8 where the scan steps over
    b'{"model": "m", "max_tokens": 1, "n": "\xed\xa0\x80", ' + HI + b'}',  # an encoded surrogate
    b'{"model": "m", "max_tokens": 1, "n": "\\udc00", ' + HI + b'}',
    b'{"model": "m", "max_tokens": 1, "tools": [{"x": 1e400}], ' + HI + b'}',  # out of range in a field read
    b'{"model": "m", "max_tokens": 1, "deep": ' + b"[" * 1020 + b"]" * 1020 + b", " + HI + b'}',
    b'{"model": "m", "max_tokens": 1, "deep": ' + b"[" * 1030 + b"]" * 1030 + b", " + HI + b'}',
    b'{"model": "a", "model": "b", "max_tokens": 1, ' + HI + b', "messages": []}',  # the last key wins
    b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": {}}]}]}',
    b'{"model": "m", "max_tokens": 1.0, ' + HI + b'}',
    b'{"model": "m", "max_tokens": true, ' + HI + b'}',
    b'[1, 2]', b'"text"', b'{"model": "m"} {}', b'{"model": "m", }',
])
def test_bodies_at_the_edges_get_the_answer_the_orjson_reading_gives(raw: bytes) -> None:
    """Huge integers orjson reads (as floats) are accepted; broken UTF-8, a byte order mark, 1025 levels are a 400."""
    for count_tokens in (False, True):
        assert outcome(lambda: parse_messages_request(raw, LIMITS, count_tokens=count_tokens)) \
            == built_whole(raw, count_tokens)


def test_a_number_out_of_float_range_in_a_field_the_scan_steps_over_goes_to_the_provider_as_written() -> None:
    """JSON's grammar allows 1e400; orjson cannot hold it, so only a translation that builds the body refuses it."""
    raw = b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "tool_use", ' \
          b'"id": "t", "name": "n", "input": {"x": 1e400}}]}]}'
    request = parse_messages_request(raw, LIMITS)
    assert request.raw is raw and request.model == "m"
    with pytest.raises(LoadBalancerError) as refused:
        request.body
    assert refused.value.status == 400 and "not valid JSON" in refused.value.message


@pytest.mark.parametrize("raw", [
    b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": {"a": 1}}, {"type": ["image"]}]}]}',
    b'{"model": "m", "max_tokens": 1, "thinking": {"type": {"a": 1}}, ' + HI + b'}',
    b'{"model": "m", "max_tokens": 1, "thinking": {"type": ["enabled"]}, ' + HI + b'}',
])
def test_a_type_that_is_not_a_string_is_forwarded_not_a_server_error(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """An object as a block's or thinking's type once raised TypeError (unhashable): a 500 for a body the provider judges."""
    for scan_from in (0, NEVER):
        monkeypatch.setattr(client_request, "SCAN_FROM_BYTES", scan_from)
        request = parse_messages_request(raw, LIMITS)
        assert (request.model, request.has_images, request.wants_thinking) == ("m", False, False)


def test_a_small_body_is_built_once_and_its_dict_kept_for_translations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_request, "SCAN_FROM_BYTES", REAL_THRESHOLD)
    request = request_of(temperature=0.5)
    assert request.decoded is not None and request.body is request.decoded
    assert request.body["temperature"] == 0.5


def test_a_body_from_the_threshold_on_is_scanned_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_request, "SCAN_FROM_BYTES", REAL_THRESHOLD)
    padding = "x" * REAL_THRESHOLD
    body = {"model": "claude-x", "max_tokens": 100, "system": padding,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                         {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "read", "input": {"p": padding}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [IMAGE]}]}]}
    calls = []
    monkeypatch.setattr(client_request, "_loads_object", lambda raw: calls.append(raw))
    request = parse_messages_request(json.dumps(body).encode(), LimitsConfig(max_body_bytes=4 * REAL_THRESHOLD))
    assert calls == [] and request.decoded is None and "body" not in vars(request)
    assert request.has_images and request.affinity_fields["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
    assert request.affinity_fields["system"] == padding
    assert request.body == body  # built only when a translation asks


def large_turn(model: str = "open-model", *, model_first: bool = True) -> bytes:
    padding = "x" * REAL_THRESHOLD
    fields = {"max_tokens": 100, "system": padding,
              "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                           {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "read",
                                                              "input": {"p": padding}}]},
                           {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}]}
    body = {"model": model, **fields} if model_first else {**fields, "model": model}
    return json.dumps(body).encode()


def read_counting_builds(raw: bytes, builds_body, monkeypatch: pytest.MonkeyPatch) -> tuple[MessagesRequest, list]:
    """The request, and which readings ran: "scan" and, each time orjson built the whole body, "built"."""
    monkeypatch.setattr(client_request, "SCAN_FROM_BYTES", REAL_THRESHOLD)
    readings, real_scan, real_loads = [], client_request.scan_messages_body, client_request.orjson.loads
    monkeypatch.setattr(client_request, "scan_messages_body", lambda raw: readings.append("scan") or real_scan(raw))
    monkeypatch.setattr(client_request.orjson, "loads",
                        lambda data: (readings.append("built") if data is raw else None) or real_loads(data))
    request = parse_messages_request(raw, LimitsConfig(max_body_bytes=4 * REAL_THRESHOLD), builds_body=builds_body)
    request.body  # what a translation does
    return request, readings


@pytest.mark.parametrize("model_first, builds, readings", [
    (True, True, ["built"]),            # its providers translate: built once, kept
    (True, False, ["scan", "built"]),   # passthrough providers: scanned (built only if one asks)
    (False, True, ["scan", "built"]),   # the model is not at the head: no hint, scanned
])
def test_a_large_body_is_built_at_once_when_its_providers_build_it_anyway(
        model_first: bool, builds: bool, readings: list, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = large_turn(model_first=model_first)
    asked = []
    request, done = read_counting_builds(raw, lambda model: asked.append(model) or builds, monkeypatch)
    assert done == readings and asked == (["open-model"] if model_first else [])
    assert request.body == json.loads(raw) and request.model == "open-model"
    scanned = parse_messages_request(raw, LimitsConfig(max_body_bytes=4 * REAL_THRESHOLD))
    assert outcome(lambda: request) == outcome(lambda: scanned)


def test_a_wrong_model_hint_changes_how_the_body_is_read_never_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last "model" key wins in JSON as orjson reads it; the hint sees the first one."""
    raw = large_turn("translated")[:-1] + b', "model": "passthrough"}'
    request, done = read_counting_builds(raw, lambda model: model == "translated", monkeypatch)
    assert done == ["built"] and request.model == "passthrough"


@pytest.mark.parametrize("raw, model", [
    (b'{"model":"claude-opus-4","messages":[]}', "claude-opus-4"),
    (b' \n{ "model" : "qwen3/coder:30b", "x": 1}', "qwen3/coder:30b"),
    ('{"model": "modèle", "x": 1}'.encode(), "modèle"),
    (b'{"model": "a\\"b", "x": 1}', None),        # escapes: no hint (the reading decides)
    (b'{"max_tokens": 1, "model": "m"}', None),   # not at the head
    (b'{"model": 5}', None), (b'{"model": ""}', None), (b'{"model": "\xff"}', None), (b"", None),
])
def test_the_model_hint_is_read_only_from_the_head_of_the_body(raw: bytes, model: str | None) -> None:
    from loadbalancer.body_scan import model_at_head
    assert model_at_head(raw) == model


def decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@SETTINGS
@given(pieces=st.lists(st.one_of(st.text(max_size=6).map(str.encode), st.binary(max_size=3),
                                 st.sampled_from(["é", "—", "🚀", "\udc80"]).map(
                                     lambda char: char.encode("utf-8", "surrogatepass"))), max_size=12),
       cut=st.integers(min_value=0, max_value=3), piece_bytes=st.integers(min_value=1, max_value=9))
def test_the_utf8_check_by_pieces_agrees_with_decoding_the_whole(pieces: list, cut: int, piece_bytes: int) -> None:
    """Sequences cut by a piece's end, cut at the body's end, stray continuation bytes, surrogates."""
    from loadbalancer.body_scan import is_utf8
    raw = b"".join(pieces)
    raw = raw[:len(raw) - cut] if cut < len(raw) else raw
    assert is_utf8(raw, piece_bytes) == decodes(raw)


@pytest.mark.parametrize("raw, valid", [
    ("abc".encode() + "é".encode() + b"def", True),
    ("ab".encode() + "🚀".encode()[:2] + b"cdef" + "🚀".encode()[2:], False),  # a sequence interrupted by ASCII
    (b"abcd" + "🚀".encode()[:3], False),                                      # cut at the very end
    (b"abcd" + b"\x80" + b"efgh", False),
])
def test_the_utf8_check_sees_sequences_across_and_between_pieces(raw: bytes, valid: bool) -> None:
    from loadbalancer.body_scan import is_utf8
    for piece_bytes in (1, 2, 3, 4, 5, 1024):
        assert is_utf8(raw, piece_bytes) is valid == decodes(raw)


def agent_turn(tools: list, system: str, turn: int) -> bytes:
    """A large turn of a session: the same system prompt and tools every turn, a longer history each time."""
    history = [{"role": "user", "content": "start"}]
    for number in range(turn):
        history += [{"role": "assistant", "content": [{"type": "tool_use", "id": f"t{number}", "name": "read_file",
                                                      "input": {"path": f"f{number}.py"}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{number}",
                                                  "content": "x = 1\n" * (REAL_THRESHOLD // 6)}]}]
    return json.dumps({"model": "claude-x", "max_tokens": 100, "system": system, "tools": tools,
                       "messages": history}).encode()


AGENT_TOOLS = [{"name": f"tool_{number}", "description": "Reads or changes files. " * 8,
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}},
                                 "required": ["path"]}} for number in range(12)]
AGENT_SYSTEM = "You are a coding agent working in a repository. " * 60


def test_a_system_prompt_and_tools_sent_again_are_read_once_and_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_request, "SCAN_FROM_BYTES", REAL_THRESHOLD)
    monkeypatch.setattr(body_scan, "SHARED_READ_FROM_BYTES", REAL_SHARED_FROM)
    limits = LimitsConfig(max_body_bytes=16 * REAL_THRESHOLD)
    first, second = (parse_messages_request(agent_turn(AGENT_TOOLS, AGENT_SYSTEM, turn), limits) for turn in (1, 2))
    assert first.tools == second.tools == tuple(AGENT_TOOLS)
    assert all(mine is theirs for mine, theirs in zip(first.tools, second.tools))
    assert first.affinity_fields["system"] == second.affinity_fields["system"] == AGENT_SYSTEM
    # Other tools are other bytes: read for themselves.
    other_tools = AGENT_TOOLS[:-1] + [{**AGENT_TOOLS[-1], "description": "changed"}]
    changed = parse_messages_request(agent_turn(other_tools, AGENT_SYSTEM, 2), limits)
    assert changed.tools == tuple(other_tools) and changed.tools[0] is not first.tools[0]
    # Below SHARED_READ_FROM_BYTES every request reads its own.
    few = [{"name": "read_file", "input_schema": {"type": "object"}}]
    one, two = (parse_messages_request(agent_turn(few, "short", turn), limits) for turn in (1, 2))
    assert one.tools == two.tools == tuple(few) and one.tools[0] is not two.tools[0]


_TOKEN = st.text("!#$%&'*+-.^`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                 min_size=1, max_size=20)


@st.composite
def _wsgi_environs(draw) -> dict:
    """An environ as a WSGI server fills it: HTTP_ keys for headers, CGI keys for the body's, and the rest."""
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/messages", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "9000", "wsgi.url_scheme": "http", "wsgi.input": object(), "HTTPS": "off"}
    for name in draw(st.lists(_TOKEN, max_size=12)):
        environ["HTTP_" + name.upper().replace("-", "_")] = draw(st.text(st.characters(max_codepoint=255), max_size=40))
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
        if draw(st.booleans()):
            environ[key] = draw(st.sampled_from(["", "application/json", "270000"]))
    return environ


@given(_wsgi_environs())
def test_the_header_size_counts_what_werkzeug_lists(environ: dict) -> None:
    from werkzeug.datastructures import EnvironHeaders
    listed = sum(len(name) + len(value) + 4 for name, value in EnvironHeaders(environ).items())
    assert client_request.header_lines_size(environ) == listed


def test_the_header_size_of_a_plain_request() -> None:
    environ = {"HTTP_X_API_KEY": "sk-123", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "",
               "HTTP_CONTENT_LENGTH": "12", "REQUEST_METHOD": "POST"}
    # "X-Api-Key: sk-123\r\n" and "Content-Type: application/json\r\n"; an empty CGI value is no header
    expected = len("X-Api-Key: sk-123\r\n") + len("Content-Type: application/json\r\n")
    assert client_request.header_lines_size(environ) == expected
