"""Regenerate the .po catalogs from the templates and routes, keeping existing translations, and compile
them: ``python service/citizen/locale/make_catalogs.py``. msgids are English; zh_CN is the default."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

WEB = Path(__file__).resolve().parent.parent
LOCALE = WEB / "locale"
METHODS = [("**/templates/**.html", "jinja2"), ("routes.py", "ignore")]


def message_ids() -> list[str]:
    ids: list[str] = []
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB),
        method_map=METHODS,
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "gettext": None},
    ):
        if isinstance(message, str) and message not in ids:
            ids.append(message)
    # Python call sites use ``_(lang, "...")``: the message is the second argument.
    source = (WEB / "routes.py").read_text()
    for match in re.finditer(r'(?:_|gettext)\(\s*lang,\s*"((?:[^"\\]|\\.)+)"', source):
        if match.group(1) not in ids:
            ids.append(match.group(1))
    return ids


def main() -> None:
    ids = message_ids()
    for lang in ("zh_CN", "en"):
        path = LOCALE / lang / "LC_MESSAGES" / "messages.po"
        old = read_po(path.open("rb")) if path.exists() else Catalog(locale=lang)
        catalog = Catalog(locale=lang, project="tipline-web", charset="utf-8")
        for msgid in ids:
            existing = old.get(msgid)
            catalog.add(msgid, existing.string if existing else "")
        missing = [m for m in ids if not catalog.get(m).string] if lang == "zh_CN" else []
        if missing:
            print(f"{lang}: {len(missing)} untranslated:", *missing, sep="\n  ")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=0, omit_header=False, no_location=True)
        with path.with_suffix(".mo").open("wb") as handle:
            write_mo(handle, catalog)


if __name__ == "__main__":
    main()
