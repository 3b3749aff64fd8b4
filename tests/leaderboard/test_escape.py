from __future__ import annotations

import re

import pytest

from vpr_bench.leaderboard.escape import escape_markdown_cell, safe_stem


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("netvlad", "netvlad"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("a|b", "a\\|b"),
        ("*bold* _it_ `code`", "\\*bold\\* \\_it\\_ \\`code\\`"),
        ("[x](http://e.vil) ~~s~~ $m$", "\\[x\\](http://e.vil) \\~\\~s\\~\\~ \\$m\\$"),
        ("line1\nline2\r\n\tend  ", "line1 line2 end"),
        ("a\\|b", "a\\\\\\|b"),  # the backslash itself is escaped first, then the pipe
        ("&lt; & co", "&amp;lt; &amp; co"),
        ('say "hi"', 'say "hi"'),
        (42, "42"),
        ("", ""),
    ],
)
def test_escape_markdown_cell(raw: object, expected: str) -> None:
    assert escape_markdown_cell(raw) == expected


def test_escaped_text_keeps_a_table_row_intact() -> None:
    evil = "a|b\n| injected | row |\n<img src=x onerror=alert(1)>"
    row = f"| {escape_markdown_cell(evil)} | 81.0 |"
    assert "\n" not in row
    assert _unescaped_pipes(row) == 3  # only the row's own delimiters
    assert "<" not in row and ">" not in row


def test_safe_stem_keeps_safe_names_and_separates_unsafe_ones() -> None:
    assert safe_stem("synthcity") == "synthcity"
    assert safe_stem("pitts30k-test.v1") == "pitts30k-test.v1"
    piped = safe_stem("a|b")
    assert piped != safe_stem("a-b") == "a-b"
    assert re.fullmatch(r"a-b-[0-9a-f]{8}", piped)
    for nasty in ("../../etc", "x/y", ".hidden", "A B"):
        stem = safe_stem(nasty)
        assert "/" not in stem and ".." not in stem and not stem.startswith(".")
