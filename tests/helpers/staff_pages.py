"""Every page of the staff site: the GET routes under /staff from the app's own route table, and what a
page's interface says in which language (text and the attributes read aloud), apart from data."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.pofile import read_po
from fastapi import routing

from service.app.main import create_app
from service.classification import classifier
from service.platform.settings import Settings
from service.staff_site import pages

# Chinese characters and the CJK and full-width punctuation that goes with them.
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
SPOKEN_ATTRIBUTES = ("aria-label", "title", "label", "placeholder", "alt")


def staff_get_routes() -> set[str]:
    """The path of every GET route under /staff, from the app itself (all roles, no database opened)."""
    with tempfile.TemporaryDirectory() as data:
        app = create_app(Settings(data_dir=Path(data), database_url=f"sqlite+aiosqlite:///{data}/unused.db"))
        return {
            context.path
            for context in routing.iter_route_contexts(app.routes)
            if "GET" in context.methods and context.path.startswith("/staff")
        }


def taxonomy_data() -> list[str]:
    """What the taxonomy file says (shown as it is, in the committee's language)."""
    words: list[str] = []
    for c in classifier.current_taxonomy().categories:
        short = c.name.split("(")[0].split("（")[0].strip()
        words += [c.name, short, c.description, str(c.terms), str(c.patterns), str(c.counter_terms)]
    return words


class _Interface(HTMLParser):
    """The words a person sees or hears on a page: text (not inside <script>, <style> or a <textarea>,
    whose content is what was typed) and the attributes a screen reader reads. The language switch, which
    names the other language in that language, is left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "style", "textarea") or "lang-switch" in (values.get("class") or "").split():
            self._skip.append(tag)
        for name in SPOKEN_ATTRIBUTES:
            if values.get(name):
                self.chunks.append(values[name] or "")
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.chunks.append(values["value"] or "")

    def handle_endtag(self, tag: str) -> None:
        if self._skip and self._skip[-1] == tag:
            self._skip.pop()

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.chunks.append(data.strip())


def interface_text(html: str) -> list[str]:
    parser = _Interface()
    parser.feed(html)
    return parser.chunks


def chinese_left(html: str, data: Iterable[str]) -> list[str]:
    """Pieces of the interface still in Chinese once the given data (names, texts, registry numbers,
    category names of the taxonomy file) is taken out."""
    known = sorted({d for d in data if d}, key=len, reverse=True)
    left = []
    for chunk in interface_text(html):
        for value in known:
            chunk = chunk.replace(value, " ")
        if CJK.search(chunk):
            left.append(chunk)
    return left


def english_interface_words() -> list[str]:
    """The staff site's English sentences and phrases (two words or more, no placeholder): none of them
    may show on a page in Chinese."""
    catalog = read_po((pages.LOCALE_DIR / "en" / "LC_MESSAGES" / "messages.po").open("rb"))
    phrases = [m.string for m in catalog if m.id and m.string and "%(" not in m.string]
    return [phrase for phrase in phrases if " " in phrase.strip()]


def english_left(html: str, data: Iterable[str]) -> list[str]:
    """English phrases of the catalog found in a page's interface (data taken out first)."""
    known = sorted({d for d in data if d}, key=len, reverse=True)
    text = "\n".join(interface_text(html))
    for value in known:
        text = text.replace(value, " ")
    return [words for words in english_interface_words() if words.strip() in text]
