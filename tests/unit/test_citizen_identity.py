"""What counts as a placeholder in the deployment's identity settings (TIPLINE_WEB_*)."""

from __future__ import annotations

from service.platform.settings import WebSettings, is_placeholder


def test_placeholder_rules() -> None:
    web = WebSettings(
        committee_name="某某区委政法委（示例）",
        hotline_number="0571-87654321",
        mailbox_address="jubao@tipline.local",
        public_url="http://jubao.cs-district.gov.cn",  # not https
    )
    assert web.placeholders() == [
        "TIPLINE_WEB_COMMITTEE_NAME",
        "TIPLINE_WEB_MAILBOX_ADDRESS",
        "TIPLINE_WEB_PUBLIC_URL",
    ]
    assert web.public("hotline_number") == "0571-87654321" and web.public("committee_name") == ""


def test_example_domains_and_words_are_placeholders() -> None:
    for value in (
        "",
        "  ",
        "jubao@example.gov.cn",
        "jubao@mail.example",
        "某某区委政法委员会（示例）",
        "TODO",
    ):
        assert is_placeholder(value), value
    for value in ("区委政法委员会", "0571-87654321", "jubao@zfw.cs-district.gov.cn"):
        assert not is_placeholder(value), value
    assert is_placeholder("https://a.test", url=True) and is_placeholder("jubao.gov.cn", url=True)
    assert not is_placeholder("https://jubao.cs-district.gov.cn", url=True)
