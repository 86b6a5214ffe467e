"""MkDocs hook: reads lists and tables the way GitHub does, so one markdown source serves both.

Python-Markdown wants a blank line before a list or a table and four spaces per level of a nested list; GitHub
needs neither, and the pages (and README) are written for GitHub. Outside fenced code, this hook inserts the
blank line and re-indents nested list items to four spaces per level.
"""

from __future__ import annotations

import re

_ITEM = re.compile(r"^( *)([-*+]|\d+[.)]) ")
_FENCE = re.compile(r"^ *(```|~~~)")


def _fix(lines: list[str]) -> list[str]:
    out: list[str] = []
    fenced, in_list, in_table = False, False, False
    indents: list[int] = []  # indents of the open list items, outermost first
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        if fenced or _FENCE.match(line):
            out.append(line)
            continue
        item = _ITEM.match(line)
        starts_table = line.startswith("|") and not in_table
        if ((item and not in_list) or starts_table) and out and out[-1].strip():
            out.append("")  # a list or table right after a paragraph
        if not line.strip() or line.startswith("#"):
            in_list, in_table, indents = False, False, []
        elif item:
            in_list = True
            indent = len(item.group(1))
            while indents and indents[-1] > indent:
                indents.pop()
            if not indents or indent > indents[-1]:
                indents.append(indent)
            line = " " * 4 * (len(indents) - 1) + line.lstrip(" ")
        in_table = line.startswith("|")
        out.append(line)
    return out


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' hook signature)
    return "\n".join(_fix(markdown.split("\n")))
