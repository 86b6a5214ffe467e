"""MkDocs hook: shows the Sphinx roles of the docstrings (``:func:`~zeronas.run.score_many```) as plain code.

The docstrings are written for ``help()`` and Sphinx; mkdocstrings renders a role as the literal text
``:func:`` before the code span. A ``~`` prefix keeps only the last dotted name, as Sphinx does.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj|const):<code>(~?)([^<]+)</code>")


def _plain(match: re.Match) -> str:
    name = match.group(2)
    return f"<code>{name.rsplit('.', 1)[-1] if match.group(1) else name}</code>"


def on_page_content(html: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' hook signature)
    return _ROLE.sub(_plain, html)
