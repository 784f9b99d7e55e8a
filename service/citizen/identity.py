"""Who the public pages speak for: the committee's name, hotline, mailbox and address (``TIPLINE_WEB_*``)
and the categories of the taxonomy in force. Nothing marked as a placeholder or an example is shown; in
production the public pages refuse to start while any is left (:func:`problems`)."""

from __future__ import annotations

import re
from typing import Any

from service.classification import classifier
from service.platform.settings import WebSettings

# How the packaged taxonomy marks what a deployment must replace: "（默认项，请按本地通知替换）" on the
# default "2" items, "（本地示例项）" on the example "N" items.
_MARKER = re.compile(r"[（(][^）)]*(示例|默认项|替换|占位|example|placeholder)[^）)]*[）)]", re.I)


def is_marked(category: Any) -> bool:
    return bool(_MARKER.search(category.name) or _MARKER.search(category.description))


def public_categories() -> list[Any]:
    """The categories a citizen may see and choose: not "other", none still marked as a placeholder."""
    return [c for c in classifier.current_taxonomy().categories if c.id != "other" and not is_marked(c)]


def problems(web: WebSettings) -> list[str]:
    """What must be set before the public pages may open in production, one line each."""
    found = [f"{name} is not set or is still a placeholder" for name in web.placeholders()]
    marked = [c.id for c in classifier.current_taxonomy().categories if is_marked(c)]
    if marked:
        found.append(
            "TIPLINE_TAXONOMY_PATH: the taxonomy in force still has placeholder or example categories "
            f"({', '.join(marked)}); point it at the committee's own file"
        )
    return found


def public_identity(web: WebSettings) -> dict[str, str]:
    """What the templates show: each value, or empty while it is a placeholder (then it is left out)."""
    return {name: web.public(name) for name in WebSettings.IDENTITY_FIELDS}
