"""Reading a systemd `EnvironmentFile=`, so the CLI sees the variables the service will see.

The rules are systemd's (systemd.exec(5)): `KEY=VALUE` lines; empty lines, lines starting with
`#` or `;` and lines without `=` are ignored; an unquoted value loses the whitespace around it,
keeps the whitespace inside, and a backslash keeps the next character (at the end of a line it
joins the next line); a value in single quotes is taken verbatim and may span lines; in double
quotes, a backslash escapes only `"`, `\\`, `` ` ``, `$` and a newline. Nothing is expanded.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WHITESPACE = " \t\r"
_DOUBLE_QUOTE_ESCAPES = '"\\`$'


class EnvironmentFileError(ValueError):
    """The environment file cannot be read."""


def read_environment_file(path: str) -> dict[str, str]:
    """The variables a systemd unit with `EnvironmentFile=path` would get.

    :raises EnvironmentFileError: the file is missing, unreadable or not UTF-8.
    """
    try:
        with open(path, encoding="utf-8") as file:
            return parse_environment_file(file.read())
    except UnicodeDecodeError as err:
        raise EnvironmentFileError(f"{path}: not UTF-8 text: {err.reason} at byte {err.start}") from err
    except OSError as err:
        raise EnvironmentFileError(f"{path}: cannot read file: {err.strerror or err}") from err


def parse_environment_file(text: str) -> dict[str, str]:
    """The assignments of an environment file's text, later ones winning (pure)."""
    variables: dict[str, str] = {}
    position = 0
    while position < len(text):
        position = _skip(text, position, _WHITESPACE + "\n")
        if position >= len(text):
            break
        if text[position] in "#;":
            position = _end_of_comment(text, position)
            continue
        line_end = _find(text, "\n", position)
        equals = _find(text, "=", position)
        if equals > line_end:
            position = line_end + 1  # no "=" on this line: ignored, as systemd does
            continue
        name = text[position:equals].rstrip(_WHITESPACE)
        value, position = _read_value(text, equals + 1)
        if _NAME.match(name):
            variables[name] = value
    return variables


def _read_value(text: str, position: int) -> tuple[str, int]:
    """The value that starts after "=", and the position after its line."""
    parts: list[str] = []
    kept = 0  # length of `parts` up to its last character that trailing-space removal keeps
    position = _skip(text, position, _WHITESPACE)
    while position < len(text) and text[position] != "\n":
        character = text[position]
        if character in "'\"":
            quoted, position = _read_quoted(text, position + 1, character)
            parts.append(quoted)
            kept = len(parts)
            position = _skip(text, position, _WHITESPACE)
            continue
        if character == "\\" and position + 1 < len(text):
            if text[position + 1] != "\n":  # backslash-newline joins the lines
                parts.append(text[position + 1])
                kept = len(parts)
            position += 2
            continue
        parts.append(character)
        if character not in _WHITESPACE:
            kept = len(parts)
        position += 1
    return "".join(parts[:kept]), position + 1


def _read_quoted(text: str, position: int, quote: str) -> tuple[str, int]:
    """A quoted part up to its closing quote, and the position after that quote."""
    parts: list[str] = []
    while position < len(text) and text[position] != quote:
        character = text[position]
        if quote == '"' and character == "\\" and position + 1 < len(text):
            following = text[position + 1]
            if following in _DOUBLE_QUOTE_ESCAPES:
                parts.append(following)
            elif following != "\n":
                parts.append(character + following)
            position += 2
            continue
        parts.append(character)
        position += 1
    return "".join(parts), position + 1


def _end_of_comment(text: str, position: int) -> int:
    """The position after a comment line (since systemd 254 a trailing backslash does not continue it)."""
    return _find(text, "\n", position) + 1


def _skip(text: str, position: int, characters: str) -> int:
    while position < len(text) and text[position] in characters:
        position += 1
    return position


def _find(text: str, needle: str, position: int) -> int:
    found = text.find(needle, position)
    return len(text) if found < 0 else found
