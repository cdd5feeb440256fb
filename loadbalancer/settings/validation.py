"""Generic checks for decoded JSON configuration: types, keys, ranges and ${VAR} substitution.

Every check names the offending place with a `Location` so that `ConfigError` can say
which file, which JSON path and what is wrong. Nothing here knows about providers; the
schema itself lives in `config.py`.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import json
import re
from dataclasses import dataclass, fields
from typing import Any, Callable, Collection, Mapping, TypeVar
from urllib.parse import urlsplit

ROOT_PATH = "$"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BARE_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")  # $VAR: taken literally, never substituted
SUGGESTION_CUTOFF = 0.6  # difflib similarity above which an unknown key is taken for a typo
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
GLOB_CHARACTERS = frozenset("*?[")
# Stands in for an unset variable so the rest of a disabled provider can still be checked.
UNSET_PLACEHOLDER = "unset"

T = TypeVar("T")
Check = Callable[[Any, "Location"], Any]


class ConfigError(ValueError):
    """A configuration problem: str(err) == f"{file}: {json_path}: {problem}"."""

    def __init__(self, file: str, json_path: str, problem: str) -> None:
        super().__init__(f"{file}: {json_path}: {problem}")
        self.file = file
        self.json_path = json_path
        self.problem = problem


@dataclass(frozen=True)
class Location:
    """A place in a configuration file: the file name and a JSON path such as `providers[1].weight`."""

    file: str
    path: str = ROOT_PATH

    def key(self, name: str) -> Location:
        """The location of an object member with an identifier-like name."""
        return Location(self.file, name if self.path == ROOT_PATH else f"{self.path}.{name}")

    def quoted_key(self, name: str) -> Location:
        """The location of an object member whose name is data (a model pattern, a header)."""
        return Location(self.file, f"{self.path}[{json.dumps(name)}]")

    def member(self, name: str) -> Location:
        """The location of an object member of either kind, dotted when the name allows it."""
        return self.key(name) if _IDENTIFIER.match(name) else self.quoted_key(name)

    def index(self, position: int) -> Location:
        """The location of an array item."""
        return Location(self.file, f"{self.path}[{position}]")

    def error(self, problem: str) -> ConfigError:
        """A ConfigError pointing here."""
        return ConfigError(self.file, self.path, problem)


def json_type_name(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _wrong_type(where: Location, expected: str, value: object) -> ConfigError:
    """A ConfigError saying what type was expected and what came."""
    return where.error(f"expected {expected}, got {json_type_name(value)}")


def expect_object(value: object, where: Location) -> dict[str, Any]:
    """The value as a dict, or a ConfigError."""
    if not isinstance(value, dict):
        raise _wrong_type(where, "an object", value)
    return value


def expect_list(value: object, where: Location) -> list[Any]:
    """The value as a list, or a ConfigError."""
    if not isinstance(value, list):
        raise _wrong_type(where, "an array", value)
    return value


def expect_str(value: object, where: Location, *, non_empty: bool = False) -> str:
    """The value as a string, or a ConfigError."""
    if not isinstance(value, str):
        raise _wrong_type(where, "a string", value)
    if non_empty and not value.strip():
        raise where.error("must not be empty")
    return value


def expect_bool(value: object, where: Location) -> bool:
    """The value as a bool, or a ConfigError."""
    if not isinstance(value, bool):
        raise _wrong_type(where, "true or false", value)
    return value


def expect_int(value: object, where: Location, *, minimum: int | None = None) -> int:
    """The value as an int (booleans rejected), at least `minimum` when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(where, "an integer", value)
    if minimum is not None and value < minimum:
        raise where.error(f"must be at least {minimum}, got {value}")
    return value


def expect_number(value: object, where: Location, *, allow_zero: bool = False) -> float:
    """The value as a positive float (or non-negative with allow_zero); booleans rejected."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong_type(where, "a number", value)
    if value != value or value in (float("inf"), float("-inf")):
        raise where.error("must be a finite number")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise where.error(f"must be {bound}, got {value}")
    return float(value)


def check_keys(obj: Mapping[str, Any], where: Location, allowed: Collection[str],
               required: Collection[str] = ()) -> None:
    """Reject unknown members and report the first missing required one."""
    for name in obj:
        if name not in allowed:
            listing = ", ".join(sorted(allowed))
            raise where.key(name).error(f"unknown key {name!r};{_suggestion(name, allowed)} "
                                        f"allowed keys: {listing}")
    for name in required:
        if name not in obj:
            raise where.key(name).error("required key is missing")


def _suggestion(name: str, allowed: Collection[str]) -> str:
    """" did you mean 'models'?" for the allowed key nearest to a typo, or ""."""
    nearest = difflib.get_close_matches(name, list(allowed), n=1, cutoff=SUGGESTION_CUTOFF)
    return f" did you mean {nearest[0]!r}?" if nearest else ""


def bare_variable_warnings(value: Any, where: Location) -> list[str]:
    """A warning for every string that writes `$VAR` where `${VAR}` was surely meant."""
    if isinstance(value, str):
        return [f"{where.file}: {where.path}: {match.group(0)!r} is taken literally; write "
                f"\"${{{match.group(1)}}}\" to use the environment variable"
                for match in _BARE_VARIABLE.finditer(value)]
    if isinstance(value, list):
        items = [(where.index(position), item) for position, item in enumerate(value)]
    elif isinstance(value, dict):
        items = [(where.member(name), item) for name, item in value.items()]
    else:
        return []
    return [warning for location, item in items for warning in bare_variable_warnings(item, location)]


def referenced_variables(text: str) -> list[str]:
    """The names of the ${VAR} references in a string, in order."""
    return _VARIABLE.findall(text)


@dataclass(frozen=True)
class MissingVariable:
    """A ${VAR} reference whose variable is not set, and where it was found."""

    name: str
    where: Location


def substitute_variables(value: Any, where: Location, environ: Mapping[str, str],
                         missing: list[MissingVariable]) -> Any:
    """A copy of decoded JSON with ${VAR} replaced in every string value; unset ones go to `missing`."""
    if isinstance(value, str):
        return _substitute_string(value, where, environ, missing)
    if isinstance(value, list):
        return [substitute_variables(item, where.index(position), environ, missing)
                for position, item in enumerate(value)]
    if isinstance(value, dict):
        return {name: substitute_variables(item, where.member(name), environ, missing)
                for name, item in value.items()}
    return value


def _substitute_string(text: str, where: Location, environ: Mapping[str, str],
                       missing: list[MissingVariable]) -> str:
    """One string with its ${VAR} references replaced."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in environ:
            return environ[name]
        missing.append(MissingVariable(name, where))
        return UNSET_PLACEHOLDER

    return _VARIABLE.sub(replace, text)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads` object hook: a repeated key would silently drop the earlier value."""
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise DuplicateKeyError(name)
        result[name] = value
    return result


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice."""

    def __init__(self, name: str) -> None:
        super().__init__(f"duplicate key {name!r} in a JSON object")
        self.name = name


def positive_int(value: object, where: Location) -> int:
    """The value as an int >= 1."""
    return expect_int(value, where, minimum=1)


def optional_positive_int(value: object, where: Location) -> int | None:
    """The value as an int >= 1, or None for JSON null."""
    return None if value is None else positive_int(value, where)


non_negative_number = functools.partial(expect_number, allow_zero=True)


def expect_choice(value: object, where: Location, allowed: Collection[str], what: str) -> str:
    """The value as one of the `allowed` strings, naming them all when it is not."""
    text = expect_str(value, where)
    if text not in allowed:
        raise where.error(f"unknown {what} {text!r}; allowed: {', '.join(allowed)}")
    return text


def optional_member(obj: Mapping[str, Any], where: Location, name: str, default: T,
                    check: Callable[[Any, Location], T]) -> T:
    """The checked member `name`, or `default` when it is absent."""
    return check(obj[name], where.key(name)) if name in obj else default


def parse_record(record_type: type[T], value: object, where: Location,
                 checks: Mapping[str, Check]) -> T:
    """A dataclass built from a JSON object: one check per member, dataclass defaults for the rest."""
    obj = expect_object(value, where)
    check_keys(obj, where, list(checks))
    return record_type(**{name: check(obj[name], where.key(name))
                          for name, check in checks.items() if name in obj})


def changed_fields(old: object, new: object) -> list[str]:
    """Names of the dataclass fields whose values differ (never the values themselves)."""
    return [item.name for item in fields(old) if getattr(old, item.name) != getattr(new, item.name)]


def substitute_or_fail(value: object, where: Location, environ: Mapping[str, str]) -> Any:
    """Substitute ${VAR} where an unset variable is an error rather than a disabled provider."""
    missing: list[MissingVariable] = []
    result = substitute_variables(value, where, environ, missing)
    if missing:
        raise missing[0].where.error(f"environment variable {missing[0].name} is not set")
    return result


def check_http_url(url: str, where: Location) -> None:
    """Reject anything but an http(s) URL with a host, a valid port and no query or fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise where.error(f"not an http(s) URL: {url!r}")
    try:
        parts.port
    except ValueError as err:
        raise where.error(f"invalid port in URL {url!r}") from err
    if parts.query or parts.fragment:
        raise where.error("a base URL must not have a query string or fragment")


def is_glob(pattern: str) -> bool:
    """Whether a model pattern is an fnmatch glob rather than an exact name."""
    return any(character in GLOB_CHARACTERS for character in pattern)


def check_glob(pattern: str, where: Location) -> None:
    """Reject an empty pattern or a glob fnmatch would misread."""
    if not pattern.strip():
        raise where.error("model pattern must not be empty")
    # fnmatch quietly treats an unclosed "[" as a literal, which is never what was meant.
    if _has_unclosed_bracket(pattern):
        raise where.error(f"invalid glob {pattern!r}: unclosed '['")
    try:
        re.compile(fnmatch.translate(pattern))
    except re.error as err:
        raise where.error(f"invalid glob {pattern!r}: {err}") from err


def _has_unclosed_bracket(pattern: str) -> bool:
    """Whether a "[" opens a set with no closing "]", following fnmatch's own rules."""
    position = 0
    while position < len(pattern):
        if pattern[position] != "[":
            position += 1
            continue
        end = position + 1
        if end < len(pattern) and pattern[end] == "!":
            end += 1
        if end < len(pattern) and pattern[end] == "]":
            end += 1  # a "]" first in the set is a literal member
        end = pattern.find("]", end)
        if end < 0:
            return True
        position = end + 1
    return False


def parse_header_map(value: object, where: Location,
                     reserved: Collection[str]) -> tuple[tuple[str, str], ...]:
    """Extra HTTP headers as (name, value) pairs in file order; `reserved` names are refused."""
    headers: list[tuple[str, str]] = []
    for name, header_value in expect_object(value, where).items():
        location = where.quoted_key(name)
        if not _HEADER_NAME.match(name):
            raise location.error(f"{name!r} is not a valid HTTP header name")
        if name.lower() in reserved:
            raise location.error(f"header {name!r} is set by the load balancer and cannot be "
                                 f"configured; reserved: {', '.join(sorted(reserved))}")
        if any(name.lower() == earlier.lower() for earlier, _ in headers):
            raise location.error(f"header {name!r} is given twice (names ignore case)")
        text = expect_str(header_value, location)
        if "\r" in text or "\n" in text:
            raise location.error("a header value must not contain line breaks")
        headers.append((name, text))
    return tuple(headers)


def read_json_file(path: str) -> Any:
    """The decoded JSON of a file; every failure is a ConfigError at the root path.

    :raises ConfigError: the file is missing, unreadable, not UTF-8 or not JSON.
    """
    where = Location(path)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError as err:
        raise where.error("file not found") from err
    except UnicodeDecodeError as err:
        raise where.error(f"not UTF-8 text: {err.reason} at byte {err.start}") from err
    except OSError as err:
        raise where.error(f"cannot read file: {err.strerror or err}") from err
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as err:
        line, column, problem = describe_json_error(text, err.pos, err.msg)
        raise where.error(f"invalid JSON at line {line} column {column}: {problem}") from err
    except DuplicateKeyError as err:
        raise where.error(str(err)) from err


def describe_json_error(text: str, position: int, message: str) -> tuple[int, int, str]:
    """Line, column and problem of a JSON syntax error, placed at the real mistake.

    The decoder notices a trailing comma or a missing one only at the next token, often on
    the next line; the mistake itself is at (or just after) the token before.
    """
    before = text[:position].rstrip()
    previous = before[-1:] if before else ""
    found = text[position:position + 1]
    if previous == "," and found in ("}", "]"):
        return (*_line_and_column(text, len(before) - 1), f"trailing comma before {found!r}")
    if message.startswith("Expecting ',' delimiter") and "\n" in text[len(before):position]:
        return (*_line_and_column(text, len(before)), "missing ',' after this value")
    if text.startswith(("//", "/*", "#"), position):
        return (*_line_and_column(text, position), f"{message} (JSON has no comments)")
    return (*_line_and_column(text, position), message)


def _line_and_column(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of a character offset, as json.JSONDecodeError counts them."""
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1
