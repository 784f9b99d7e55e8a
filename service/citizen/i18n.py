"""Templates and translations: Simplified Chinese by default, English on request (``?lang=en`` or the
form's ``lang`` field — never a cookie). Catalogs are gettext/Babel under ``locale/``; msgids are English."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
LOCALE_DIR = HERE / "locale"
DEFAULT = "zh_CN"
LANGS = ("zh_CN", "en")
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}


def pick(value: str | None) -> str:
    return "en" if value == "en" else DEFAULT


@cache
def translations(lang: str) -> NullTranslations:
    loaded = Translations.load(str(LOCALE_DIR), [lang], domain="messages")
    return loaded


@cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=False,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def gettext(lang: str, message: str, **values: object) -> str:
    text = translations(lang).gettext(message)
    return text % values if values else text
