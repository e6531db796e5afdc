"""User text (model names, descriptions, file names, error messages quoting them) shown as plain
text where Streamlit renders Markdown.

Streamlit's Markdown turns ``![x](https://host/)`` into an image every viewer's browser fetches,
``[x](javascript:...)`` into a link, ``:red[...]`` into colour, ``$...$`` into maths. Escaping every
ASCII punctuation character that makes Markdown with a backslash is valid CommonMark and leaves the text exactly as
written; line breaks become spaces, so one line stays one line.
"""
from __future__ import annotations

import re
import string

MAX_SHOWN = 2_000          # text beyond this is cut: a page need not draw a 50 MB description
# "-", "." and "=" only make Markdown at the start of a line (lists, headings): escaped there only
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation.replace("-", "").replace(".", "").replace("=", ""))
                          + "])")
_LEADING = re.compile(r"^(\s*)([-=]|\d+)(\.?)")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c]+")


def plain(text: object, limit: int = MAX_SHOWN) -> str:
    """``text`` escaped so that Markdown shows it literally, on one line, at most ``limit`` characters."""
    value = str(text)
    if len(value) > limit:
        value = value[:limit] + "…"
    value = _PUNCTUATION.sub(r"\\\1", _LINE_BREAKS.sub(" ", value))
    return _LEADING.sub(_escape_leading, value, count=1)


def _escape_leading(match: re.Match) -> str:
    space, mark, dot = match.groups()
    if mark.isdigit():          # "1." starts a numbered list: escape its dot
        return space + mark + ("\\." if dot else "")
    return space + "\\" + mark + dot
