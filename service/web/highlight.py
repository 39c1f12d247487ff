"""Shared key terms marked in a text (``<mark>``), so a reader sees at once why a match was made."""

from __future__ import annotations

import re
from collections.abc import Iterable

from markupsafe import Markup, escape


def highlight(text: str | None, terms: Iterable[str] | None, limit: int | None = None) -> Markup:
    """The text, HTML-escaped, with every occurrence of the terms wrapped in <mark> (longest term first).

    ``limit`` cuts the text to about that many characters, starting a little before the first mark."""
    text = text or ""
    wanted = sorted({t for t in (terms or []) if t and t.strip()}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(t) for t in wanted)) if wanted else None
    if limit is not None and len(text) > limit:
        first = pattern.search(text) if pattern else None
        start = max(0, (first.start() - limit // 4) if first else 0)
        text = ("…" if start else "") + text[start:start + limit] + "…"
    if pattern is None:
        return Markup(escape(text))
    out, last = [], 0
    for found in pattern.finditer(text):
        out.append(escape(text[last:found.start()]))
        out.append(Markup("<mark>") + escape(found.group(0)) + Markup("</mark>"))
        last = found.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)
