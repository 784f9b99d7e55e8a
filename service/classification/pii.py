"""Personal data in report text: phone numbers, ID and bank card numbers, e-mail, plates, names, addresses.

Numbers are validated (ID check digit and birth date, Luhn, mainland numbering plan) so that case numbers,
amounts and dates are not masked. Names and addresses aim at precision over recall: only the reporter's
self-descriptions ("我叫…", "家住…") and fully-formed street addresses are taken.
Spans refer to the original text; the detector never logs the text or what it found.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from service.classification.normalize import fold
from service.classification.results import PersonalDataKind, PersonalDataSpan

MASK_MARKERS: dict[str, str] = {
    "mobile": "［手机号］",
    "landline": "［电话］",
    "id_number": "［身份证号］",
    "bank_card": "［银行卡号］",
    "email": "［邮箱］",
    "plate": "［车牌号］",
    "name": "［姓名］",
    "address": "［地址］",
}

# Ambiguity is resolved by priority: a higher number wins an overlap.
_PRIORITY = {
    "email": 9,
    "id_number": 8,
    "bank_card": 7,
    "mobile": 6,
    "landline": 5,
    "plate": 4,
    "address": 3,
    "name": 2,
}

_CASE_CONTEXT = re.compile(
    r"(案号|编号|单号|订单|流水号|文号|字第|批号|工号|警号|货号|快递号|发票号|账单号|合同号)[^\d]{0,3}$"
)

_MOBILE = re.compile(r"(?<![\d.])(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![\d.])")
_LANDLINE = re.compile(r"(?<![\d.])(?:\(0\d{2,3}\)|0\d{2,3})[- ]?[2-9]\d{6,7}(?:-\d{1,4})?(?![\d.])")
_ID = re.compile(r"(?<![0-9a-z])([1-8]\d{5})((?:19|20)\d{2})(\d{2})(\d{2})(\d{3})([\dx])(?![0-9a-z])")
_CARD = re.compile(r"(?<![\d])(\d{4}(?:[ -]?\d{4}){2,3}(?:[ -]?\d{1,3})?)(?![\d])")
_EMAIL = re.compile(
    r"(?<![a-z0-9._%+-])[a-z0-9._%+-]{1,64}@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,10}(?![a-z])"
)
_PLATE = re.compile(
    r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]"
    r"[a-hj-np-z][·• -]?(?:[a-hj-np-z0-9]{5,6}|[a-hj-np-z0-9]{4}[挂学警港澳])(?![a-z0-9])"
)
_ADDRESS_CUE = re.compile(
    r"(?:家住在|家住|居住在|住在|住址[:：]?|家庭住址[:：]?|现住址?[:：]?|通讯地址[:：]?|联系地址[:：]?|地址[:：]|居住在|户籍地址?[:：]?)\s*"
    r"(?P<addr>[\u4e00-\u9fff0-9a-z\-#]{4,40})"
)
_ADDRESS_MARK = re.compile(r"(路|街|巷|弄|道|号|栋|幢|单元|室|村|组|小区|花园|苑|公寓|大厦|楼)")
_STREET_ADDRESS = re.compile(
    r"(?:[\u4e00-\u9fff]{2,12}(?:省|市|区|县|镇|乡|街道))*[\u4e00-\u9fff]{1,10}(?:路|街|大道|巷|弄)\d{1,5}号"
    r"(?:(?:\d{1,4}|[一二三四五六七八九十]{1,3})(?:栋|幢|座|号楼))?(?:\d{1,3}单元)?(?:\d{1,5}(?:室|房|号房))?"
)
# The street-address pattern may swallow the words before it ("家住…", "地址…"): trim them off.
_ADDRESS_PREFIX = re.compile(r"^.*?(?:家住在|居住在|家住|住在|住址|地址|现住|户籍地|位于|家在)[:：]?")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10x98765432"


def id_check_digit_valid(number: str) -> bool:
    number = number.lower()
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17]


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or len(number) < 2:
        return False
    total = 0
    for index, ch in enumerate(reversed(number)):
        digit = int(ch)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _valid_birth(year: str, month: str, day: str) -> bool:
    try:
        born = date(int(year), int(month), int(day))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


def _in_case_context(text: str, start: int) -> bool:
    return bool(_CASE_CONTEXT.search(text[max(0, start - 8) : start]))


def find_personal_data(text: str, accused: Accused = ()) -> list[PersonalDataSpan]:
    """Personal data in ``text``; ``accused`` are the names of the structured accused field, which stay."""
    # Folding is length-preserving, so positions in ``folded`` are positions in ``text``.
    folded = fold(text)
    found: list[tuple[int, int, PersonalDataKind]] = []
    for m in _EMAIL.finditer(folded):
        found.append((m.start(), m.end(), "email"))
    for m in _ID.finditer(folded):
        if id_check_digit_valid(m.group(0)) and _valid_birth(m.group(2), m.group(3), m.group(4)):
            found.append((m.start(), m.end(), "id_number"))
    for m in _CARD.finditer(folded):
        digits = re.sub(r"[ -]", "", m.group(1))
        if 16 <= len(digits) <= 19 and digits[0] in "3456" and luhn_valid(digits):
            if not _in_case_context(folded, m.start()):
                found.append((m.start(), m.end(), "bank_card"))
    for m in _MOBILE.finditer(folded):
        if not _in_case_context(folded, m.start()):
            found.append((m.start(), m.end(), "mobile"))
    for m in _LANDLINE.finditer(folded):
        if not _in_case_context(folded, m.start()):
            found.append((m.start(), m.end(), "landline"))
    for m in _PLATE.finditer(folded):
        found.append((m.start(), m.end(), "plate"))
    for start, end in _reporter_names(folded, accused):
        found.append((start, end, "name"))
    for m in _ADDRESS_CUE.finditer(folded):
        addr = m.group("addr")
        if _ADDRESS_MARK.search(addr):
            found.append((m.start("addr"), m.end("addr"), "address"))
    for m in _STREET_ADDRESS.finditer(folded):
        cue = _ADDRESS_PREFIX.match(m.group(0))
        found.append((m.start() + (cue.end() if cue else 0), m.end(), "address"))
    return _resolve_overlaps(found)


# --- Reporters' names --------------------------------------------------------------------------------
#
# A reporter names themself after a cue ("我是…", "本人…", "来电人…", "举报人：…"), in a signature or 落款
# line at the end of a letter, or through a relative ("我儿子张小明被…"). The segmenter (jieba, with
# part-of-speech tags) finds the word boundaries around a cue; a name is a surname from the list below
# followed by one or two characters, starting and ending on word boundaries and followed by a boundary
# (punctuation, a verb, a preposition, a date), never by a noun ("周大福珠宝店"), a title ("王书记") or a
# place suffix ("张家村"). Names the reporter reports on carry no such cue and stay; the accused names of
# the structured field are never masked, whatever the cue.

# 百家姓 and the common single surnames it lacks.
_SINGLE_SURNAMES = frozenset(
    "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章云苏潘葛奚范彭郎"
    "鲁韦昌马苗凤花方俞任袁柳酆鲍史唐费廉岑薛雷贺倪汤滕殷罗毕郝邬安常乐于时傅皮卞齐康伍余元卜顾孟平黄"
    "和穆萧尹姚邵湛汪祁毛禹狄米贝明臧计伏成戴谈宋茅庞熊纪舒屈项祝董梁杜阮蓝闵席季麻强贾路娄危江童颜郭"
    "梅盛林刁钟徐邱骆高夏蔡田樊胡凌霍虞万支柯昝管卢莫经房裘缪干解应宗丁宣贲邓郁单杭洪包诸左石崔吉钮龚"
    "程嵇邢滑裴陆荣翁荀羊於惠甄曲家封芮羿储靳汲邴糜松井段富巫乌焦巴弓牧隗山谷车侯宓蓬全郗班仰秋仲伊宫"
    "宁仇栾暴甘钭厉戎祖武符刘景詹束龙叶幸司韶郜黎蓟薄印宿白怀蒲邰从鄂索咸籍赖卓蔺屠蒙池乔阴郁胥能苍双"
    "闻莘党翟谭贡劳逄姬申扶堵冉宰郦雍却璩桑桂濮牛寿通边扈燕冀郏浦尚农温别庄晏柴瞿阎充慕连茹习宦艾鱼容"
    "向古易慎戈廖庾终暨居衡步都耿满弘匡国文寇广禄阙东欧殳沃利蔚越夔隆师巩厍聂晁勾敖融冷訾辛阚那简饶空"
    "曾毋沙乜养鞠须丰巢关蒯相查后荆红游竺权逯盖益桓公"
    "闫覃仝亓冼禚仉佘邝苟芦谯付肖练粟银母麦代展帅晋楚钦汝涂鄢佟阳言岳缑亢况牟佴笪年邸揭"
)
_COMPOUND_SURNAME_LIST = (
    "万俟 司马 上官 欧阳 夏侯 诸葛 闻人 东方 赫连 皇甫 尉迟 公羊 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 "
    "公孙 仲孙 轩辕 令狐 钟离 宇文 长孙 慕容 鲜于 闾丘 司徒 司空 亓官 司寇 子车 颛孙 端木 巫马 公西 漆雕 "
    "乐正 壤驷 公良 拓跋 夹谷 宰父 谷梁 段干 百里 东郭 南门 呼延 羊舌 微生 梁丘 左丘 东门 西门 南宫 第五 "
    "独孤"
).split()
_COMPOUND_SURNAMES_SET = frozenset(_COMPOUND_SURNAME_LIST)
# A "given name" that is a form of address, a title or a place suffix: "王书记", "吴先生", "张家村".
_NOT_GIVEN = frozenset(
    "书记 局长 所长 主任 科长 队长 院长 庭长 处长 部长 县长 镇长 乡长 村长 组长 站长 校长 经理 老板 总 "
    "老师 医生 师傅 先生 女士 小姐 警官 同志 大姐 大哥 阿姨 大爷 大妈 某人 法官 民警 律师 家 所 局 院 "
    "记者 代表 会计 大夫 干部 总监 厂长 市长 区长 省长 主席 委员 助理 秘书 教授 博士 工 师".split()
)
_PLACE_SUFFIX = frozenset("村镇乡县市区省州庄湾屯港街路巷店厂")
# In a longer scan a word after the surname with one of these tags is not a given name.
_NOT_GIVEN_TAGS = frozenset({"v", "p", "c", "d", "f", "u", "uj", "ul", "r", "m", "q"})
_HAN = re.compile(r"^[\u4e00-\u9fff]+$")
_SOMEONE = frozenset({"某", "某某"})
# Tags of the word after a name that end it: punctuation (x), verbs, prepositions, adverbs, times,
# particles, conjunctions, numerals, pronouns, localisers.
_ENDS_NAME = ("x", "v", "p", "d", "t", "u", "c", "m", "f", "r", "q", "y", "e", "o", "a", "z", "l", "i")
_WORDS_AFTER_NAME = frozenset({"男", "女", "同志", "本人", "敬上", "谨上", "拜上"})
_SIGN_OFF = frozenset(
    {
        "此致",
        "敬礼",
        "群众",
        "村民",
        "居民",
        "落款",
        "签名",
        "实名",
        "举报人",
        "反映人",
        "来信人",
        "知情人",
        "致",
    }
)
_TAIL_AFTER = re.compile(r"^[\s,.:;!?\-—~()（）]*(?:$|\n|\d|敬上|谨上|拜上|叩上|上$|\(签名\)|（签名）|签名)")
# A cue, then the name right after it (after a colon, a space, or 是/为/叫/系).
_STRONG_CUE = re.compile(
    r"(?:我叫|我名叫|我的名字(?:叫|是)|名字(?:叫|是)|名叫|本人(?:叫|名叫|姓名)?|(?<!被)(?:实名)?(?:举报|反映|投诉|控告|申诉|信访)人"
    r"(?:姓名|签名)?|来电人|来信人|写信人|来访人|发件人|联系人|姓名|署名|落款|签名|实名(?:举报|反映)?|自称|"
    r"自报姓名|留名|(?:^|[,，])叫)[\s:：]*(?:为|是|叫|系)?[\s:：]*"
)
# The same cues may name the reporter a few words on: "本人系桃园村村民仉建平", "来电人吴先生（吴振宇）".
_SCAN_CUE = re.compile(r"(?:我是|本人(?:系|是|为)?|来电人|自己是)")
_KIN = (
    "儿子|女儿|闺女|父亲|母亲|爸爸|妈妈|丈夫|老公|妻子|老婆|媳妇|爱人|哥哥|姐姐|弟弟|妹妹|大哥|二哥|三哥|"
    "大姐|二姐|爷爷|奶奶|外公|外婆|姥姥|姥爷|孙子|孙女|外孙女|外孙|侄子|侄女|外甥女|外甥|女婿|儿媳|公公|婆婆|"
    "岳父|岳母|丈母娘|老丈人|叔叔|二叔|三叔|大伯|伯父|舅舅|姑姑|姨妈|表哥|表姐|表弟|表妹|堂哥|堂姐|堂弟|"
    "堂妹|老头子|老伴|孩子|家人"
)
_KIN_CUE = re.compile(r"(?:我|本人|我们)(?:的|家的?)?(?:" + _KIN + r")(?:叫|名叫|是)?")
_CONNECTORS = frozenset({"是", "为", "叫", "名叫", "系", "姓名", "签名", "为名", "其叫", "称"})
# Scanning for a name stops at these words: what follows is the report, not the reporter.
_SCAN_STOP = frozenset(
    "反映 举报 称 说 表示 投诉 控告 揭发 要求 希望 请 请求 认为 发现 看到 知道 听说 被 向 对 把 让 给 和 "
    "与 跟 不 没有 不愿 不肯 拒绝 要 想".split()
)
_CLAUSE_END = re.compile(r"[。；;!！?？\n]")
_SCAN_CLAUSE_END = re.compile(r"[。；;!！?？\n,，]")
_SENTENCE_END = re.compile(r"[。!！?？]")


def _surname_length(word: str) -> int:
    if word[:2] in _COMPOUND_SURNAMES_SET:
        return 2
    return 1 if word[:1] in _SINGLE_SURNAMES else 0


@lru_cache(maxsize=1)
def _segmenter():
    """jieba's part-of-speech tokenizer on its bundled dictionary (no download). Its dictionary cache goes
    to a directory only this user can write: jieba loads the cache file it finds there."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.tmp_dir = _private_cache_dir()
    return jieba.posseg.POSTokenizer(tokenizer)


def load_name_segmenter() -> None:
    """Load the segmenter's dictionary now (≈ 3 s, ≈ 175 MB per process) rather than on the first report."""
    _segmenter().tokenizer.check_initialized()


def _private_cache_dir() -> str:
    path = os.path.join(tempfile.gettempdir(), f"tipline-jieba-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    status = os.lstat(path)
    if stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid() and not status.st_mode & 0o077:
        return path
    return tempfile.mkdtemp(prefix="tipline-jieba-")  # someone else's or open to others: a fresh one


@dataclass(frozen=True)
class _Word:
    text: str
    tag: str
    start: int
    end: int


def _words(folded: str, start: int, end: int) -> list[_Word]:
    words: list[_Word] = []
    at = start
    for pair in _segmenter().cut(folded[start:end], HMM=False):
        words.append(_Word(pair.word, pair.flag, at, at + len(pair.word)))
        at += len(pair.word)
    return words


def _name_at(words: list[_Word], i: int, folded: str, *, strict: bool = True) -> tuple[int, int] | None:
    """A name starting at word ``i``: surname + one or two characters, ending on a word boundary and
    followed by a boundary. The longest such name, or None. ``strict``: a dictionary word that is not
    tagged as a name ("司机", "居民") is not one; right after "我叫" or "举报人：" it may be ("高山")."""
    first = words[i]
    surname = _surname_length(first.text)
    if not surname or not _HAN.match(first.text):
        return None
    best = None
    length = 0
    for j in range(i, min(i + 3, len(words))):
        if not _HAN.match(words[j].text):
            break
        length += len(words[j].text)
        given = folded[first.start + surname : first.start + length]
        if length > surname + 2 or not given:
            if length > surname + 2:
                break
            continue
        if given in _NOT_GIVEN or given[-1] in _PLACE_SUFFIX and given not in _SOMEONE:
            continue
        if strict and len(first.text) > surname and not _tagged_as_name(first.text):
            break  # "仲裁后", "司机": the first word is a dictionary word, not a name
        if strict and j > i and len(words[j].text) > 1 and words[j].tag in _NOT_GIVEN_TAGS:
            break  # "后起诉": a surname-like character before a verb
        if _ends_name(words, j + 1):
            best = (first.start, first.start + length)
    return best


def _tagged_as_name(word: str) -> bool:
    tag = _segmenter().word_tag_tab.get(word)
    return tag is None or tag.startswith("nr")


def _ends_name(words: list[_Word], k: int) -> bool:
    if k >= len(words):
        return True
    after = words[k]
    if not _HAN.match(after.text) or after.text in _WORDS_AFTER_NAME:
        return True
    return after.tag.startswith(_ENDS_NAME) and not after.tag.startswith(("vn", "nr"))


def _skip_connectors(words: list[_Word], i: int) -> int:
    while i < len(words) and (
        words[i].text in _CONNECTORS or not words[i].text.strip() or words[i].text in ":："
    ):
        i += 1
    return i


def _after_cue(folded: str, at: int, *, scan: bool) -> tuple[int, int] | None:
    # A name right after the cue needs a few characters and the word after them; a scan, the clause.
    # Segmenting costs far more than this check: no surname where the name would start, no segmenting.
    while at < len(folded) and folded[at] in " \t:：":
        at += 1
    if not scan and not _surname_length(folded[at : at + 2]):
        return None
    width = 30 if scan else 10
    clause = (_SCAN_CLAUSE_END if scan else _CLAUSE_END).search(folded, at, min(len(folded), at + width))
    end = clause.start() if clause else min(len(folded), at + width)
    if end <= at:
        return None
    words = _words(folded, at, end)
    if scan and words and words[0].text in _SCAN_STOP:
        return None  # "来电人称赵某…": the caller says something about someone
    i = _skip_connectors(words, 0)
    if i < len(words) and (found := _name_at(words, i, folded, strict=scan)):
        return found
    if not scan:
        return None
    for k in range(i, len(words)):
        # A verb ends the self-description ("来电人补充：赵某…"): what follows is the report.
        if words[k].text in _SCAN_STOP or words[k].tag == "p" or words[k].tag.startswith("v"):
            return None
        if k > i and (found := _name_at(words, k, folded)):
            return found
    return None


def _signature(folded: str) -> list[tuple[int, int]]:
    """Names alone in the closing lines: "此致 敬礼 李秀兰", "——于海洋", "群众 阚玉珍\\n2026年4月2日"."""
    ends = list(_SENTENCE_END.finditer(folded))
    start = ends[-1].end() if ends else 0
    if start >= len(folded.rstrip()) and "\n" in folded.strip():
        start = folded.rstrip().rfind("\n") + 1  # a letter whose last line ends with a full stop
    start = max(start, len(folded) - 60)
    if start >= len(folded) or start == 0 and "\n" not in folded:
        return []  # a one-sentence report has no signature
    if not any(ch in _SINGLE_SURNAMES for ch in folded[start:]) and not any(
        name in folded[start:] for name in _COMPOUND_SURNAME_LIST
    ):
        return []
    words = _words(folded, start, len(folded))
    found = []
    for i in range(len(words)):
        before = words[i - 1] if i else None
        if before is not None and _HAN.match(before.text) and before.text not in _SIGN_OFF:
            continue
        span = _name_at(words, i, folded)
        if span and _TAIL_AFTER.match(folded[span[1] :]):
            found.append(span)
    return found


def find_reporter_names(text: str, accused: Accused = ()) -> list[tuple[int, int]]:
    """Spans of the reporter's own name and of relatives named to identify them; never an accused name."""
    return _reporter_names(fold(text), accused)


# Where the accused names may be split in the structured field ("张三、李四").
_NAME_SEPARATORS = re.compile(r"[、,，;；/\s]+")
_MAX_KEYED_NAME = 12  # longest accused name a keyed matcher looks for in a text (Han names are 2-4)


@dataclass(frozen=True)
class KeyedNames:
    """The accused names as keyed BLAKE2b digests (key: the process's lookup key for accused names), so a
    process that cannot open the case key (the public side masking a reporter's follow-up) can still tell
    whether a name in the text is the accused and keep it readable. Without the key the digests answer
    nothing. ``names``: digests of each folded name; ``parts``: of every substring of two or more
    characters of each name (a mention of part of the name: "张三" of "张三丰")."""

    key: bytes
    names: frozenset[bytes]
    parts: frozenset[bytes]

    @classmethod
    def of(cls, names: Sequence[str], key: bytes) -> KeyedNames:
        whole = [fold(n) for name in names for n in _NAME_SEPARATORS.split(name or "") if len(n) >= 2]
        parts = {n[i:j] for n in whole for i in range(len(n)) for j in range(i + 2, len(n) + 1)}
        return cls(key, frozenset(_digest(key, n) for n in whole), frozenset(_digest(key, p) for p in parts))

    @classmethod
    def load(cls, stored: bytes | None, key: bytes) -> KeyedNames:
        """From :meth:`dump`'s bytes; ``None`` (a clue registered before these were kept): no names."""
        data = json.loads(stored) if stored else {"n": [], "p": []}
        return cls(key, frozenset(map(bytes.fromhex, data["n"])), frozenset(map(bytes.fromhex, data["p"])))

    def dump(self) -> bytes | None:
        if not self.names:
            return None
        return json.dumps(
            {"n": sorted(d.hex() for d in self.names), "p": sorted(d.hex() for d in self.parts)}
        ).encode()

    def covers(self, candidate: str) -> bool:
        """The candidate is part of an accused name, or an accused name is part of it."""
        if _digest(self.key, candidate) in self.parts:
            return True
        n = len(candidate)
        return any(
            _digest(self.key, candidate[i:j]) in self.names for i in range(n) for j in range(i + 2, n + 1)
        )

    def occurrences(self, folded: str) -> list[tuple[int, int]]:
        if not self.names:
            return []
        return [
            (i, j)
            for i in range(len(folded))
            for j in range(i + 2, min(i + _MAX_KEYED_NAME, len(folded)) + 1)
            if _digest(self.key, folded[i:j]) in self.names
        ]


def _digest(key: bytes, text: str) -> bytes:
    return hashlib.blake2b(
        text.encode("utf-8"), key=key[:64], digest_size=16, person=b"accused-name"
    ).digest()


@dataclass(frozen=True)
class _PlainNames:
    """The accused names in plaintext (intake holds them from the structured field)."""

    names: tuple[str, ...]

    def covers(self, candidate: str) -> bool:
        return any(candidate in name or name in candidate for name in self.names)

    def occurrences(self, folded: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for name in self.names for m in re.finditer(re.escape(name), folded)]


Accused = Sequence[str] | KeyedNames


def _accused(accused: Accused) -> KeyedNames | _PlainNames:
    if isinstance(accused, KeyedNames):
        return accused
    # A one-character "name" (a bare surname) protects nothing: it would shield every reporter so named.
    return _PlainNames(tuple(fold(name.strip()) for name in accused if name and len(name.strip()) >= 2))


def _reporter_names(folded: str, accused: Accused) -> list[tuple[int, int]]:
    spans: set[tuple[int, int]] = set()
    for m in _STRONG_CUE.finditer(folded):
        if found := _after_cue(folded, m.end(), scan=False):
            spans.add(found)
    for m in _SCAN_CUE.finditer(folded):
        if found := _after_cue(folded, m.end(), scan=True):
            spans.add(found)
    for m in _KIN_CUE.finditer(folded):
        if found := _after_cue(folded, m.end(), scan=False):
            spans.add(found)
    for m in _LEADING_NAME.finditer(folded):
        spans.add((m.start("name"), m.end("name")))
    spans.update(_signature(folded))
    kept = _accused(accused)
    protected = kept.occurrences(folded)
    names = {folded[s:e] for s, e in spans}
    # Every mention of a reporter's name, not only the one after the cue.
    for name in names:
        if len(name) >= 2 and name[_surname_length(name) :] not in _SOMEONE:
            spans.update((m.start(), m.end()) for m in re.finditer(re.escape(name), folded))
    return sorted(
        (s, e)
        for s, e in spans
        if not any(s < pe and ps < e for ps, pe in protected) and not kept.covers(folded[s:e])
    )


# A signature line that opens the report: "王芳，女，…" / "王芳（男）…".
_LEADING_NAME = re.compile(
    r"^\s*(?P<name>(?:"
    + "|".join(_COMPOUND_SURNAME_LIST)
    + r")[\u4e00-\u9fff]{1,2}|["
    + "".join(sorted(_SINGLE_SURNAMES))
    + r"][\u4e00-\u9fff]{1,2})(?=\s*[,，(（]\s*[男女]\s*[,，)）])"
)


def _resolve_overlaps(found: list[tuple[int, int, PersonalDataKind]]) -> list[PersonalDataSpan]:
    chosen: list[tuple[int, int, PersonalDataKind]] = []
    for start, end, kind in sorted(found, key=lambda f: (-_PRIORITY[f[2]], -(f[1] - f[0]), f[0])):
        overlapping = [c for c in chosen if c[0] < end and start < c[1]]
        if not overlapping:
            chosen.append((start, end, kind))
        elif kind == "address" and all(c[2] == "address" for c in overlapping):
            continue
    return [PersonalDataSpan(s, e, k) for s, e, k in sorted(chosen)]


def mask_personal_data(text: str, spans: list[PersonalDataSpan]) -> str:
    """Replace each span with its marker. Overlapping spans are merged under the first one's marker."""
    out: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if span.end <= cursor:
            continue
        start = max(span.start, cursor)
        out.append(text[cursor:start])
        if start == span.start:
            out.append(MASK_MARKERS.get(span.kind, "［个人信息］"))
        cursor = span.end
    out.append(text[cursor:])
    return "".join(out)


@dataclass(frozen=True)
class MaskedTexts:
    """Reporter-written texts as staff see them, and the originals of those that masking changed (the
    caller seals these with the identity key; they are submitter details)."""

    texts: dict[str, str | None]
    originals: dict[str, str]


def mask_texts(texts: Mapping[str, str | None], accused: Accused = ()) -> MaskedTexts:
    """Mask each reporter-written text by name: the report body, a follow-up, an operator's record, a
    call-back instruction. One rule for every channel and every later addition. ``accused`` are the
    names the reporter reports on (the structured field), or their :class:`KeyedNames` where the names
    cannot be read: they stay readable."""
    masked: dict[str, str | None] = {}
    originals: dict[str, str] = {}
    for name, text in texts.items():
        spans = find_personal_data(text, accused) if text else []
        if spans:
            assert text is not None
            masked[name] = mask_personal_data(text, spans)
            originals[name] = text
        else:
            masked[name] = text
    return MaskedTexts(masked, originals)
