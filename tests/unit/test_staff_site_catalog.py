"""The staff site's English catalog covers every message the templates mark with ``_()`` and every menu
label, and the compiled catalog the site loads says the same as the .po file."""

from __future__ import annotations

import importlib.util

from babel.messages.pofile import read_po

from service.staff_site import pages

spec = importlib.util.spec_from_file_location("make_catalogs", pages.LOCALE_DIR / "make_catalogs.py")
assert spec and spec.loader
make_catalogs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_catalogs)


def test_every_marked_message_has_english() -> None:
    ids = make_catalogs.message_ids()
    assert "工作人员登录" in ids and "工作人员账号" in ids  # templates and menu labels are both found
    assert "已分办" in ids and "来电记录" in ids  # and the fixed words Python hands to the templates (|tr)
    catalog = read_po(make_catalogs.CATALOG.open("rb"))
    missing = [m for m in ids if not (catalog.get(m) and catalog.get(m).string)]
    assert missing == [], f"run python service/staff_site/locale/make_catalogs.py and translate: {missing}"
    stale = [m for m in ids if pages.translate("en", m) != catalog.get(m).string]
    assert stale == [], f"the .mo is out of date: run make_catalogs.py ({stale[:5]})"
    assert pages.translate("zh", "工作人员登录") == "工作人员登录"
