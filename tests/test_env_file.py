"""systemd EnvironmentFile parsing, as `check-config --env-file` and `probe --env-file` read it."""
from __future__ import annotations

from pathlib import Path

import pytest

from loadbalancer.settings.env_file import EnvironmentFileError, parse_environment_file, read_environment_file


@pytest.mark.parametrize(("text", "expected"), [
    ("A=1\nB=two words\n", {"A": "1", "B": "two words"}),
    ("  A =  padded value  \n", {"A": "padded value"}),
    ("# a comment\n; another\n\nA=1\n", {"A": "1"}),
    ("no equals sign here\nA=1\n", {"A": "1"}),
    ("A='single $quoted \\n value'\n", {"A": "single $quoted \\n value"}),
    ('A="double \\"quoted\\" \\$HOME \\x"\n', {"A": 'double "quoted" $HOME \\x'}),
    ("A='spans\nlines'\n", {"A": "spans\nlines"}),
    ("A=joined \\\nline\n", {"A": "joined line"}),
    ("A=escaped\\ space\\ \n", {"A": "escaped space "}),
    ("A=${NOT_EXPANDED}\n", {"A": "${NOT_EXPANDED}"}),
    ("A=1\nA=2\n", {"A": "2"}),
    ("A=\n", {"A": ""}),
    ("A=x # not a comment\n", {"A": "x # not a comment"}),
    ("export A=1\n9B=2\nC-D=3\n", {}),  # not valid names for systemd: ignored
    ("A=last line without newline", {"A": "last line without newline"}),
    ("# a comment ending in a backslash \\\nA=1\n", {"A": "1"}),
    ("A=sk-ant-api03-abc\r\n", {"A": "sk-ant-api03-abc"}),
])
def test_environment_files_are_read_as_systemd_reads_them(text: str, expected: dict[str, str]) -> None:
    assert parse_environment_file(text) == expected


def test_an_unreadable_environment_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentFileError, match="cannot read file"):
        read_environment_file(str(tmp_path / "missing.env"))
    binary = tmp_path / "binary.env"
    binary.write_bytes(b"A=\xff\xfe\n")
    with pytest.raises(EnvironmentFileError, match="not UTF-8"):
        read_environment_file(str(binary))
