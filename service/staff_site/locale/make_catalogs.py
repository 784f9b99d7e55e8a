"""Regenerate the staff site's English catalog from the templates and the menu labels, keeping existing
translations, and compile it: ``python service/staff_site/locale/make_catalogs.py``. msgids are the Chinese
text the templates show by default; the script lists the ones still without English."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

SITE = Path(__file__).resolve().parent.parent
LOCALE = SITE / "locale"
CATALOG = LOCALE / "en" / "LC_MESSAGES" / "messages.po"


def message_ids() -> list[str]:
    ids: list[str] = []
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(SITE),
        method_map=[("**/templates/**.html", "jinja2")],
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "gettext": None},
    ):
        if isinstance(message, str) and message not in ids:
            ids.append(message)
    # The menu labels of pages.nav_links and the fixed words Python hands to the templates (|tr).
    menu = (SITE / "pages.py").read_text()
    words = [m.group(1) for m in re.finditer(r'links(?:\.append\(| = \[)\("/staff[^"]*", "([^"]+)"\)', menu)]
    for word in words + vocabulary():
        if word not in ids:
            ids.append(word)
    return ids


def vocabulary() -> list[str]:
    """The words of the lists the staff pages show through ``|tr``."""
    from service.registry import brief, lifecycle
    from service.registry.ledger import CHANNEL_NAMES, METHOD_NAMES, SOURCE_NAMES
    from service.staff_site import admin_pages, clue_pages, intake_pages, registry_pages, routes

    lists: list[dict[str, str]] = [
        lifecycle.STATUS_NAMES,
        lifecycle.FINDINGS,
        METHOD_NAMES,
        SOURCE_NAMES,
        CHANNEL_NAMES,
        brief.SECTIONS,
        clue_pages.ACTION_NAMES,
        clue_pages.ADDITION_NAMES,
        clue_pages.TRANSFER_KINDS,
        clue_pages.GROUP_NAMES,
        clue_pages.REDACTION_LABELS,
        intake_pages.SOURCE_LABELS,
        registry_pages.DUE_NAMES,
        admin_pages.UNIT_KINDS,
        {key: label for key, label, _ in routes.FIGURES},
        {
            "registered": clue_pages.unit_label("registered", ""),
            "other": clue_pages.unit_label("triaged", ""),
        },
    ]
    return [word for words in lists for word in words.values()]


def main() -> int:
    ids = message_ids()
    old = read_po(CATALOG.open("rb")) if CATALOG.exists() else Catalog(locale="en")
    catalog = Catalog(locale="en", project="tipline-staff", charset="utf-8")
    for msgid in ids:
        existing = old.get(msgid)
        catalog.add(msgid, existing.string if existing else "")
    missing = [m for m in ids if not catalog.get(m).string]
    if missing:
        print(f"en: {len(missing)} untranslated:", *missing, sep="\n  ")
    CATALOG.parent.mkdir(parents=True, exist_ok=True)
    with CATALOG.open("wb") as handle:
        write_po(handle, catalog, width=0, omit_header=False, no_location=True, sort_output=True)
    with CATALOG.with_suffix(".mo").open("wb") as handle:
        write_mo(handle, catalog)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
