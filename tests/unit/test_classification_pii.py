import pytest

from service.classification import classifier
from service.classification.pii import id_check_digit_valid, luhn_valid

VALID_ID = "11010519491231002X"


def _kinds(text):
    return [(s.kind, text[s.start : s.end]) for s in classifier.find_personal_data(text)]


def test_validators():
    assert id_check_digit_valid(VALID_ID)
    assert not id_check_digit_valid("110105194912310021")
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的手机13812345678，随时联系", ("mobile", "13812345678")),
        ("电话：+86 138-1234-5678", ("mobile", "+86 138-1234-5678")),
        ("手機１３８１２３４５６７８", ("mobile", "１３８１２３４５６７８")),
        ("座机020-83345678", ("landline", "020-83345678")),
        ("单位电话（0755）26543210", None),
        ("身份证" + VALID_ID + "。", ("id_number", VALID_ID)),
        ("卡号4111 1111 1111 1111转账", ("bank_card", "4111 1111 1111 1111")),
        ("邮箱 zhang.san_1@qq.com 请回复", ("email", "zhang.san_1@qq.com")),
        ("车牌粤A12345被扣", ("plate", "粤A12345")),
        ("新能源车牌沪AD12345", ("plate", "沪AD12345")),
        ("我叫王建国，今年五十岁", ("name", "王建国")),
        ("举报人：李梅，电话见下", ("name", "李梅")),
        ("家住某市某区人民路256号5栋1单元302室，", ("address", "某市某区人民路256号5栋1单元302室")),
    ],
)
def test_detects_each_kind(text, expected):
    found = _kinds(text)
    if expected is None:
        assert any(kind == "landline" for kind, _ in found)
    else:
        assert expected in found


@pytest.mark.parametrize(
    "text",
    [
        "身份证110105194912310021",  # wrong check digit
        "身份证110105194913310026",  # month 13
        "卡号4111 1111 1111 1112",  # Luhn fails
        "案号：13812345678号执行案件",  # a case number that looks like a phone number
        "（2021）粤0104民初12345号",  # court case number
        "赔偿款13800000元",  # an amount, 8 digits
        "罚了20000元，又交了15000元保证金",  # amounts
        "2023年12月31日晚上八点",  # a date
        "20231231下午",  # a compact date
        "编号2023123112345678",  # a long serial, not a card (Luhn) nor an ID (length)
        "订单号138123456789",  # 12 digits: not a mobile number
        "版本1.3812345678",  # decimal number
        "我是受害人，我叫不出他的名字",  # no surname after the cue
        "我住在这里很多年了",  # cue without an address
    ],
)
def test_near_misses_are_not_personal_data(text):
    assert _kinds(text) == []


def test_mask_replaces_each_span_with_a_marker_and_keeps_the_rest():
    text = f"我叫张伟，手机13812345678，身份证{VALID_ID}，邮箱a@b.cn，车牌粤B12345。民警打人。"
    spans = classifier.find_personal_data(text)
    masked = classifier.mask_personal_data(text, spans)
    assert (
        masked == "我叫［姓名］，手机［手机号］，身份证［身份证号］，邮箱［邮箱］，车牌［车牌号］。民警打人。"
    )
    assert classifier.mask_personal_data(text, []) == text


def test_mask_handles_overlapping_spans():
    from service.classification.results import PersonalDataSpan

    text = "abcdefgh"
    spans = [PersonalDataSpan(1, 5, "mobile"), PersonalDataSpan(3, 7, "email")]
    assert classifier.mask_personal_data(text, spans) == "a［手机号］h"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我叫欧阳明，2019年报的案", ("name", "欧阳明")),
        ("王芳，女，手机见附件", ("name", "王芳")),
        ("我家住在长沙市岳麓区桐梓坡路168号6栋，", ("address", "长沙市岳麓区桐梓坡路168号6栋")),
    ],
)
def test_compound_surnames_signature_lines_and_address_cues(text, expected):
    assert expected in _kinds(text)


def test_a_name_in_the_middle_of_a_sentence_is_not_taken_for_a_signature():
    assert _kinds("我们去找王所长，女民警说他不在") == []
