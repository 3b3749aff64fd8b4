"""Make plugin-supplied text safe to put into generated markdown.

Method names, checkpoint tags, paper sources and protocol notes come from plugins and result
records, i.e. from third parties. None of it may break a table row (``|``, newlines), start
markdown formatting (``*``, ``_``, backticks, links, ``$`` math) or inject HTML (``<script>``).
"""

from __future__ import annotations

import hashlib
import html
import re

__all__ = ["escape_markdown_cell", "safe_stem"]

_WHITESPACE_RE = re.compile(r"\s+")
# Characters with an inline meaning in (GitHub-flavoured) markdown, including table cells.
# The backslash comes first so that the escapes added for the others are not escaped again.
_MARKDOWN_META = ("\\", "`", "*", "_", "[", "]", "|", "~", "$")
_SAFE_STEM_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def escape_markdown_cell(text: object) -> str:
    r"""Escape ``text`` for one markdown table cell (or a heading, or running text).

    Whitespace runs (newlines and tabs included) collapse to one space, so a cell never spans
    two lines; ``&``, ``<`` and ``>`` become HTML entities, so no tag is ever emitted;
    markdown metacharacters (backslash, backtick, ``*``, ``_``, ``[``, ``]``, ``|``, ``~``,
    ``$``) get a backslash, so they render literally and a ``|`` never splits a cell.

    Args:
        text: Anything; it is converted with ``str()``.

    Returns:
        The escaped single-line text.

    Example:
        >>> escape_markdown_cell("a|b <script>")
        'a\\|b &lt;script&gt;'
    """
    value = _WHITESPACE_RE.sub(" ", str(text)).strip()
    value = html.escape(value, quote=False)
    for char in _MARKDOWN_META:
        value = value.replace(char, "\\" + char)
    return value


def safe_stem(text: str) -> str:
    """A file-name stem for ``text``: itself when already safe, else a slug plus a short hash.

    Safe means lower-case letters, digits, ``.``, ``_`` and ``-`` (not starting with a dot).
    Unsafe text is slugged and suffixed with 8 hex digits of its sha256, so two different
    names never share a stem (``"a|b"`` and ``"a-b"`` stay apart) and ``..`` or ``/`` can never
    leave the output folder.
    """
    if _SAFE_STEM_RE.match(text) and ".." not in text:
        return text
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}"
