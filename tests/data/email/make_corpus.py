"""Regenerates tests/data/email/corpus: `python tests/data/email/make_corpus.py tests/data/email/corpus`."""

# ruff: noqa: E501 - raw message fixtures read best on one line each

import base64
import json
import quopri
import sys
from pathlib import Path

OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
for old in [*OUT.glob("*.eml"), *OUT.glob("*.json")]:
    old.unlink()
N = [0]


def b64(data: bytes, width=76) -> bytes:
    enc = base64.b64encode(data)
    return b"\r\n".join(enc[i : i + width] for i in range(0, len(enc), width))


def ew(text: str, charset="utf-8", enc="B") -> str:
    data = text.encode(charset)
    if enc == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    q = "".join(chr(c) if (48 <= c < 123 and chr(c).isalnum()) else f"={c:02X}" for c in data)
    return f"=?{charset}?Q?{q}?="


def hdr(**kw) -> bytes:
    lines = []
    for k, v in kw.items():
        lines.append(f"{k.replace('_', '-')}: {v}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def emit(name: str, raw: bytes, expected: dict) -> None:
    N[0] += 1
    stem = f"{N[0]:02d}-{name}"
    (OUT / f"{stem}.eml").write_bytes(raw)
    (OUT / f"{stem}.json").write_text(
        json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


BASE = "From: {frm}\r\nTo: jubao@tipline.local\r\nDate: Mon, 4 Mar 2024 10:00:00 +0800\r\nMessage-ID: <{mid}@mail.example.cn>\r\n"


def base(frm="anon@example.cn", mid=None, **extra) -> bytes:
    mid = mid or f"corpus{N[0] + 1}"
    return BASE.format(frm=frm, mid=mid).encode() + (hdr(**extra) if extra else b"")


REPORT = "某区法院执行局张法官收了被执行人的红包，案子一直压着不办。"

# 01 utf-8 plain, 8bit, encoded From name
emit(
    "utf8-plain",
    base(frm=f"{ew('刘一')} <liuyi@qq.com>")
    + hdr(
        Subject=ew("举报执行法官"),
        MIME_Version="1.0",
        Content_Type="text/plain; charset=utf-8",
        Content_Transfer_Encoding="8bit",
    )
    + b"\r\n"
    + REPORT.encode()
    + b"\r\n",
    {
        "kind": "report",
        "subject_contains": ["举报执行法官"],
        "body_contains": ["张法官收了被执行人的红包"],
        "identity": {"from_address": ["liuyi@qq.com"], "from_name": ["刘一"]},
        "message_id": "<corpus1@mail.example.cn>",
    },
)

# 02 gb2312 label on GBK-only characters, base64
gbk_text = "派出所民警李喆在堃记茶楼收钱，报警没人管。"
emit(
    "gb2312-label-gbk-text",
    base()
    + hdr(
        Subject=ew("派出所问题", "gb2312"),
        MIME_Version="1.0",
        Content_Type='text/plain; charset="gb2312"',
        Content_Transfer_Encoding="base64",
    )
    + b"\r\n"
    + b64(gbk_text.encode("gbk"))
    + b"\r\n",
    {
        "kind": "report",
        "subject_contains": ["派出所问题"],
        "body_contains": ["李喆在堃记茶楼收钱"],
        "lossy_excludes": ["undecodable bytes replaced"],
    },
)

# 03 GBK quoted-printable
emit(
    "gbk-quoted-printable",
    base()
    + hdr(
        Subject="=?GBK?Q?" + "".join(f"={c:02X}" for c in "看守所".encode("gbk")) + "?=",
        MIME_Version="1.0",
        Content_Type="text/plain; charset=GBK",
        Content_Transfer_Encoding="quoted-printable",
    )
    + b"\r\n"
    + quopri.encodestring("看守所管教收钱给在押人员传递消息，保外就医造假。".encode("gbk"))
    + b"\r\n",
    {"kind": "report", "subject_contains": ["看守所"], "body_contains": ["保外就医造假"]},
)

# 04 GB18030 with four-byte characters, 8bit
emit(
    "gb18030-four-byte",
    base()
    + hdr(
        Subject="gb18030",
        MIME_Version="1.0",
        Content_Type="text/plain; charset=gb18030",
        Content_Transfer_Encoding="8bit",
    )
    + b"\r\n"
    + "司法所𠮷所长吃拿卡要，乱罚款。".encode("gb18030")
    + b"\r\n",
    {"kind": "report", "body_contains": ["司法所𠮷所长吃拿卡要"]},
)

# 05 Big5 base64, traditional characters
emit(
    "big5-base64",
    base()
    + hdr(
        Subject=ew("檢察官關係案", "big5"),
        MIME_Version="1.0",
        Content_Type="text/plain; charset=big5",
        Content_Transfer_Encoding="base64",
    )
    + b"\r\n"
    + b64("前檢察官當律師，包贏官司，收取疏通費。".encode("big5"))
    + b"\r\n",
    {"kind": "report", "subject_contains": ["檢察官關係案"], "body_contains": ["前檢察官當律師，包贏官司"]},
)

# 06 unknown charset label (UTF-8 bytes)
emit(
    "unknown-charset",
    base()
    + hdr(
        Subject="unknown charset",
        MIME_Version="1.0",
        Content_Type="text/plain; charset=x-user-defined-zh",
        Content_Transfer_Encoding="8bit",
    )
    + b"\r\n"
    + "辅警打人，暴力执法。".encode()
    + b"\r\n",
    {
        "kind": "report",
        "body_contains": ["辅警打人，暴力执法"],
        "lossy_contains": ["unknown charset; text decoded by guess"],
    },
)

# 07 broken base64: junk characters and missing padding
enc = base64.b64encode("监狱计分造假，花钱减刑。".encode()).rstrip(b"=")
broken = enc[:10] + b"!!" + enc[10:]
emit(
    "broken-base64",
    base()
    + hdr(
        Subject="broken",
        MIME_Version="1.0",
        Content_Type="text/plain; charset=utf-8",
        Content_Transfer_Encoding="base64",
    )
    + b"\r\n"
    + broken
    + b"\r\n",
    {
        "kind": "report",
        "body_contains": ["监狱计分造假，花钱减刑"],
        "lossy_contains": ["broken base64 repaired"],
    },
)

# 08 RFC 2047: a multi-byte character split between two encoded words; Q-encoded From name
subject_bytes = "关于公安局长违规经商的举报".encode()
cut = 4  # inside the second character
s1 = base64.b64encode(subject_bytes[:cut]).decode()
s2 = base64.b64encode(subject_bytes[cut:]).decode()
emit(
    "rfc2047-split-multibyte",
    base(frm=f"{ew('黄二', enc='Q')} <huanger@163.com>")
    + f"Subject: =?UTF-8?B?{s1}?=\r\n =?UTF-8?B?{s2}?=\r\n".encode()
    + hdr(MIME_Version="1.0", Content_Type="text/plain; charset=utf-8")
    + b"\r\n"
    + "局长老婆开公司承揽工程。".encode()
    + b"\r\n",
    {
        "kind": "report",
        "subject_contains": ["关于公安局长违规经商的举报"],
        "identity": {"from_name": ["黄二"], "from_address": ["huanger@163.com"]},
    },
)

# 09 RFC 2047 Q, gb2312, split across words with text between
emit(
    "rfc2047-q-gb2312-words",
    base()
    + f"Subject: Re: {ew('法官', 'gb2312', 'Q')} {ew('吃请', 'gb2312', 'Q')} case 12\r\n".encode()
    + hdr(MIME_Version="1.0", Content_Type="text/plain; charset=utf-8")
    + b"\r\n"
    + "法官私下见面吃请。".encode()
    + b"\r\n",
    {"kind": "report", "subject_contains": ["Re: 法官吃请 case 12"]},
)

# 10 RFC 2231 file name with continuations
fname = "证据材料第一部分.pdf".encode()
pct = "".join(f"%{c:02X}" for c in fname)
multipart_head = hdr(MIME_Version="1.0", Content_Type='multipart/mixed; boundary="b10"')
emit(
    "rfc2231-filename",
    base()
    + hdr(Subject="rfc2231")
    + multipart_head
    + b"\r\n--b10\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "见附件。".encode()
    + b"\r\n--b10\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
    + f"Content-Disposition: attachment;\r\n filename*0*=UTF-8''{pct[:30]};\r\n filename*1*={pct[30:]}\r\n\r\n".encode()
    + b64(b"%PDF-1.4\n%fake\n")
    + b"\r\n--b10--\r\n",
    {
        "kind": "report",
        "body_contains": ["见附件"],
        "attachments": [
            {
                "filename": "证据材料第一部分.pdf",
                "content_type": "application/pdf",
                "inline": False,
                "data_startswith": "%PDF",
            }
        ],
    },
)

# 11 RFC 2047 file names that are paths
emit(
    "filename-paths",
    base()
    + hdr(Subject="paths")
    + hdr(MIME_Version="1.0", Content_Type='multipart/mixed; boundary="b11"')
    + b"\r\n--b11\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee files\r\n"
    b'--b11\r\nContent-Type: application/octet-stream; name="'
    + ew("../../etc/passwd").encode()
    + b'"\r\nContent-Disposition: attachment\r\n\r\nroot:x\r\n'
    b'--b11\r\nContent-Type: audio/mpeg\r\nContent-Disposition: attachment; filename="C:\\\\Users\\\\me\\\\'
    + ew("录音.mp3", "gb2312").encode()
    + b'"\r\n\r\nID3\r\n'
    b"--b11--\r\n",
    {
        "kind": "report",
        "attachments": [
            {"filename": "passwd", "content_type": "application/octet-stream"},
            {"filename": "录音.mp3", "content_type": "audio/mpeg"},
        ],
    },
)

# 12 HTML-only with scripts, styles, handlers, remote images
html = """<html><head><title>t</title><style>p{color:red}</style><script>alert('x')</script></head>
<body onload="steal()"><p>尊敬的领导：</p><div>交警大队<b>王某</b>酒驾，<a href="http://example.com/x" onclick="evil()">链接</a>公车私用。</div>
<img src="http://tracker.example.com/pixel.gif" alt="tracking"><table><tr><td>时间</td><td>2024年1月</td></tr></table>
<script type="text/javascript">document.write('injected')</script><p>谢谢&nbsp;&#x4E2D;&amp;</p></body></html>"""
emit(
    "html-only",
    base()
    + hdr(
        Subject="html",
        MIME_Version="1.0",
        Content_Type="text/html; charset=utf-8",
        Content_Transfer_Encoding="quoted-printable",
    )
    + b"\r\n"
    + quopri.encodestring(html.encode())
    + b"\r\n",
    {
        "kind": "report",
        "body_contains": ["尊敬的领导", "交警大队王某酒驾，链接公车私用。", "时间 2024年1月", "谢谢 中&"],
        "body_excludes": ["alert", "steal", "evil", "tracker", "injected", "color:red", "<", "http://"],
        "lossy_contains": ["HTML body converted to plain text"],
    },
)

# 13 multipart/alternative: plain preferred
emit(
    "alternative",
    base()
    + hdr(Subject="alt", MIME_Version="1.0", Content_Type='multipart/alternative; boundary="b13"')
    + b"\r\n--b13\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "纯文本版本：辅警索要好处。".encode()
    + b"\r\n--b13\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>"
    + "HTML版本：辅警索要好处。".encode()
    + b"</p>\r\n--b13--\r\n",
    {"kind": "report", "body_contains": ["纯文本版本"], "body_excludes": ["HTML版本"]},
)

# 14 multipart/related inline image inside alternative
png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
emit(
    "related-inline-image",
    base()
    + hdr(Subject="related", MIME_Version="1.0", Content_Type='multipart/alternative; boundary="b14a"')
    + b"\r\n--b14a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "见下图，罚款单没有盖章。".encode()
    + b'\r\n--b14a\r\nContent-Type: multipart/related; boundary="b14r"\r\n\r\n--b14r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>'
    + "见下图，罚款单没有盖章。".encode()
    + b'<img src="cid:img1"></p>\r\n--b14r\r\nContent-Type: image/png\r\nContent-ID: <img1>\r\n'
    b'Content-Disposition: inline; filename="ticket.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    + b64(png)
    + b"\r\n--b14r--\r\n--b14a--\r\n",
    {
        "kind": "report",
        "body_contains": ["罚款单没有盖章"],
        "attachments": [
            {"filename": "ticket.png", "content_type": "image/png", "inline": True, "size": len(png)}
        ],
    },
)

# 15 multipart/mixed with several attachments
jpg = b"\xff\xd8\xff\xe0" + b"JFIF" + b"\x00" * 20
emit(
    "mixed-attachments",
    base()
    + hdr(Subject=ew("材料"), MIME_Version="1.0", Content_Type='multipart/mixed; boundary="b15"')
    + b"\r\n--b15\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + b64("附上收据和照片。".encode())
    + b'\r\n--b15\r\nContent-Type: image/jpeg; name="photo.jpg"\r\nContent-Disposition: attachment; filename="photo.jpg"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    + b64(jpg)
    + b'\r\n--b15\r\nContent-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document\r\nContent-Disposition: attachment; filename="'
    + ew("说明.docx").encode()
    + b'"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    + b64(b"PK\x03\x04docx")
    + b'\r\n--b15\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename="notes.txt"\r\n\r\nnot body\r\n--b15--\r\n',
    {
        "kind": "report",
        "body_contains": ["附上收据和照片"],
        "body_excludes": ["not body"],
        "attachments": [
            {"filename": "photo.jpg", "content_type": "image/jpeg", "inline": False, "size": len(jpg)},
            {
                "filename": "说明.docx",
                "content_type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            },
            {"filename": "notes.txt", "content_type": "text/plain"},
        ],
    },
)

# 16 forwarded message/rfc822
inner = (
    (
        "From: =?utf-8?B?"
        + base64.b64encode("孙八".encode()).decode()
        + "?= <sunba@sina.com>\r\nTo: friend@example.com\r\nReply-To: sunba.work@sina.com\r\n"
        "Received: from [203.0.113.77] by mx.sina.com\r\nSubject: =?utf-8?B?"
        + base64.b64encode("我知道的情况".encode()).decode()
        + "?=\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    + "检察院的人私下见当事人，打探案情。".encode()
    + b"\r\n"
)
emit(
    "forwarded-rfc822",
    base()
    + hdr(Subject="Fwd: 情况", MIME_Version="1.0", Content_Type='multipart/mixed; boundary="b16"')
    + b"\r\n--b16\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "转发朋友的信。".encode()
    + b"\r\n--b16\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
    + inner
    + b"\r\n--b16--\r\n",
    {
        "kind": "report",
        "subject_contains": ["Fwd: 情况"],
        "body_contains": ["转发朋友的信", "Forwarded message", "我知道的情况", "打探案情"],
        "body_excludes": ["sunba", "孙八", "203.0.113.77"],
        "identity": {"forwarded": ["孙八", "sunba@sina.com", "sunba.work@sina.com"]},
        "identity_contains": ["203.0.113.77"],
    },
)

# 17 inline forward with quoted header lines
emit(
    "inline-forward-headers",
    base()
    + hdr(Subject="Fwd: 线索", MIME_Version="1.0", Content_Type="text/plain; charset=utf-8")
    + b"\r\n"
    + (
        "请看下面。\r\n\r\n---------- Forwarded message ---------\r\nFrom: 王五 <wangwu@163.com>\r\nDate: 2024年3月1日\r\nSubject: 线索\r\n"
        "To: 赵钱 <zhaoqian@126.com>\r\nCc: someone@example.org\r\n\r\n看守所所长收钱，纸面服刑。\r\n"
    ).encode(),
    {
        "kind": "report",
        "body_contains": ["请看下面", "看守所所长收钱，纸面服刑"],
        "body_excludes": ["wangwu", "王五", "zhaoqian", "赵钱", "someone@example.org"],
        "identity": {"quoted": ["From: 王五 <wangwu@163.com>", "To: 赵钱 <zhaoqian@126.com>"]},
    },
)

# 18 long quoted reply with attribution line
quoted = "\r\n".join(f"> 第{i}行：您的举报已收到，查询码 ABCD-{i:04d}。" for i in range(300))
emit(
    "long-quoted-reply",
    base()
    + hdr(Subject="Re: 您的举报已收到", MIME_Version="1.0", Content_Type="text/plain; charset=utf-8")
    + b"\r\n"
    + (
        "补充材料：他还放高利贷。\r\n\r\n在 2024年3月1日 周五 10:00，郑九 <zhengjiu@qq.com> 写道：\r\n"
        + quoted
        + "\r\n"
    ).encode(),
    {
        "kind": "report",
        "body_contains": ["补充材料：他还放高利贷", "第299行"],
        "body_excludes": ["zhengjiu", "郑九", "写道"],
        "identity": {"quoted": ["在 2024年3月1日 周五 10:00，郑九 <zhengjiu@qq.com> 写道："]},
    },
)

# 19 Chinese Outlook quoted original message
emit(
    "outlook-original-message",
    base()
    + hdr(Subject="答复: 举报", MIME_Version="1.0", Content_Type="text/plain; charset=utf-8")
    + b"\r\n"
    + (
        "再补充一点：仓库钥匙在他手里。\r\n\r\n-----原始邮件-----\r\n发件人: 钱十 <qianshi@foxmail.com>\r\n发送时间: 2024年3月1日 9:00\r\n"
        "收件人: jubao@tipline.local\r\n抄送: 冯一一 <feng11@qq.com>\r\n主题: 举报\r\n\r\n原来的内容。\r\n"
    ).encode(),
    {
        "kind": "report",
        "body_contains": ["仓库钥匙在他手里", "原始邮件", "原来的内容"],
        "body_excludes": ["qianshi", "钱十", "feng11", "冯一一"],
        "identity_contains": ["qianshi@foxmail.com", "feng11@qq.com"],
    },
)

# 20 signature after "-- "
emit(
    "signature-delimiter",
    base()
    + hdr(Subject="sig", MIME_Version="1.0", Content_Type="text/plain; charset=utf-8")
    + b"\r\n"
    + (
        "交警队长给亲戚的拖车场介绍生意。\r\n\r\n-- \r\n李四\r\n电话：13800138000\r\n地址：某市某区幸福路12号\r\n"
    ).encode(),
    {
        "kind": "report",
        "body_contains": ["拖车场介绍生意"],
        "body_excludes": ["李四", "13800138000", "幸福路"],
        "identity": {"signature": ["李四", "电话：13800138000", "地址：某市某区幸福路12号"]},
    },
)

# 21 signature without delimiter
emit(
    "signature-no-delimiter",
    base()
    + hdr(Subject="sig2", MIME_Version="1.0", Content_Type="text/plain; charset=utf-8")
    + b"\r\n"
    + (
        "法院执行干警把查封的车开回家自己用，他的手机号很多人都知道。\r\n\r\n此致\r\n敬礼\r\n举报人：陈七\r\n手机 139-1234-5678\r\nchenqi@example.cn\r\n"
    ).encode(),
    {
        "kind": "report",
        "body_contains": ["查封的车开回家自己用", "他的手机号很多人都知道", "此致"],
        "body_excludes": ["陈七", "1234-5678", "chenqi@"],
        "identity": {"signature": ["举报人：陈七", "手机 139-1234-5678", "chenqi@example.cn"]},
    },
)

# 22 SMTPUTF8 raw UTF-8 headers
emit(
    "smtputf8-headers",
    "From: 周举报 <举报人@例子.中国>\r\nTo: jubao@tipline.local\r\nSubject: 未编码的中文主题\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n乡镇派出所所长开赌场。\r\n".encode(),
    {
        "kind": "report",
        "subject_contains": ["未编码的中文主题"],
        "body_contains": ["开赌场"],
        "identity": {"from_name": ["周举报"], "from_address": ["举报人@例子.中国"]},
        "message_id": None,
    },
)

# 23 missing headers: no From, no Date, no Content-Type, no MIME-Version
emit(
    "missing-headers",
    "X-Note: minimal\r\n\r\n法官离任后当律师代理原单位案件。\r\n".encode(),
    {
        "kind": "report",
        "subject": "",
        "body_contains": ["法官离任后当律师代理原单位案件"],
        "identity_absent": ["from_address"],
    },
)

# 24 broken boundary: declared boundary not used
emit(
    "broken-boundary",
    base()
    + hdr(Subject="boundary", MIME_Version="1.0", Content_Type='multipart/mixed; boundary="declared"')
    + b"\r\n--actual-boundary-123\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "边界写错了，但内容要保留。".encode()
    + b'\r\n--actual-boundary-123\r\nContent-Type: image/gif\r\nContent-Disposition: attachment; filename="a.gif"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    + b64(b"GIF89a\x01\x00")
    + b"\r\n--actual-boundary-123--\r\n",
    {
        "kind": "report",
        "body_contains": ["边界写错了，但内容要保留"],
        "attachments": [{"filename": "a.gif", "content_type": "image/gif", "data_startswith": "GIF89a"}],
        "lossy_contains": ["MIME boundary repaired"],
    },
)

# 25 missing closing boundary
emit(
    "missing-close-boundary",
    base()
    + hdr(Subject="noclose", MIME_Version="1.0", Content_Type='multipart/mixed; boundary="b25"')
    + b"\r\n--b25\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "没有结束边界。".encode()
    + b'\r\n--b25\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="x.pdf"\r\n\r\n%PDF-1.4 truncated\r\n',
    {
        "kind": "report",
        "body_contains": ["没有结束边界"],
        "attachments": [{"filename": "x.pdf", "content_type": "application/pdf"}],
    },
)

# 26 NUL bytes
emit(
    "nul-bytes",
    base()
    + hdr(Subject="nul\x00subject", MIME_Version="1.0", Content_Type="text/plain; charset=utf-8")
    + b"\r\n"
    + "他\x00收\x00了钱。".encode()
    + b"\r\n",
    {
        "kind": "report",
        "subject_contains": ["nulsubject"],
        "body_contains": ["他收了钱"],
        "lossy_contains": ["NUL bytes removed"],
    },
)

# 27 mixed line endings
emit(
    "mixed-line-endings",
    b"From: mixed@example.cn\nTo: jubao@tipline.local\r\nSubject: mixed\rMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\n\r\n"
    + "第一行\r\n第二行\n第三行\r第四行\r\n".encode(),
    {
        "kind": "report",
        "subject": "mixed",
        "body_contains": ["第一行\n第二行\n第三行\n第四行"],
        "identity": {"from_address": ["mixed@example.cn"]},
    },
)

# 28 auto-reply by header
emit(
    "auto-reply-header",
    base(frm="boss@example.com")
    + hdr(
        Subject=ew("自动回复: 您的来信"),
        Auto_Submitted="auto-replied",
        MIME_Version="1.0",
        Content_Type="text/plain; charset=utf-8",
    )
    + b"\r\n"
    + "我正在休假，3月10日返回。".encode()
    + b"\r\n",
    {"kind": "auto_reply"},
)

# 29 out-of-office by subject only
emit(
    "out-of-office-subject",
    base(frm="oof@example.com")
    + hdr(
        Subject="Automatic reply: Out of Office",
        X_Auto_Response_Suppress="All",
        MIME_Version="1.0",
        Content_Type="text/plain; charset=us-ascii",
    )
    + b"\r\nI am out of the office until Monday.\r\n",
    {"kind": "auto_reply"},
)

# 30 DSN bounce
emit(
    "dsn-bounce",
    b"Return-Path: <>\r\n"
    + base(frm="MAILER-DAEMON@mx.example.net")
    + hdr(
        Subject="Undelivered Mail Returned to Sender",
        MIME_Version="1.0",
        Content_Type='multipart/report; report-type=delivery-status; boundary="b30"',
    )
    + b"\r\n--b30\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver.\r\n--b30\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    b"--b30\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: jubao@tipline.local\r\nSubject: ack\r\n--b30--\r\n",
    {"kind": "bounce"},
)

# 31 MDN read receipt
emit(
    "mdn-read-receipt",
    base(frm="reader@example.com")
    + hdr(
        Subject="Read: 举报",
        MIME_Version="1.0",
        Content_Type='multipart/report; report-type=disposition-notification; boundary="b31"',
    )
    + b"\r\n--b31\r\nContent-Type: text/plain\r\n\r\nYour message was displayed.\r\n--b31\r\nContent-Type: message/disposition-notification\r\n\r\n"
    b"Final-Recipient: rfc822; reader@example.com\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n--b31--\r\n",
    {"kind": "auto_reply"},
)

# 32 spam flag
emit(
    "spam-flag",
    base(frm="promo@spam.example")
    + hdr(
        Subject="Cheap watches", X_Spam_Flag="YES", X_Spam_Status="Yes, score=12.3", Content_Type="text/plain"
    )
    + b"\r\nBuy now\r\n",
    {"kind": "spam"},
)

# 33 bulk newsletter
emit(
    "bulk-newsletter",
    base(frm="news@shop.example")
    + hdr(
        Subject="本周优惠",
        Precedence="bulk",
        List_Unsubscribe="<mailto:unsub@shop.example>",
        MIME_Version="1.0",
        Content_Type="text/plain; charset=utf-8",
    )
    + b"\r\n"
    + "全场五折。".encode()
    + b"\r\n",
    {"kind": "spam"},
)

# 34 trace headers with IPs and logins, Reply-To, Sender
emit(
    "trace-headers",
    b"Received: from mail.example.cn (unknown [198.51.100.23]) by mx.tipline.local with ESMTP\r\n"
    b"Received: from [10.1.2.3] (helo=pc) by mail.example.cn with esmtpsa (Exim) (Authenticated sender: login-zhangsan)\r\n"
    b"X-Originating-IP: [192.0.2.44]\r\nX-Sender-IP: 192.0.2.45\r\nX-AUTH-User: zs_login@example.cn\r\n"
    b"Authentication-Results: mx.tipline.local; spf=pass smtp.mailfrom=zs@example.cn\r\n"
    + base(frm=f"{ew('张三')} <zs@example.cn>")
    + hdr(
        Reply_To='"Zhang San" <zhangsan.reply@example.cn>',
        Sender="secretary@example.cn",
        Subject="trace",
        MIME_Version="1.0",
        Content_Type="text/plain; charset=utf-8",
    )
    + b"\r\n"
    + "禁毒大队民警吸毒。".encode()
    + b"\r\n",
    {
        "kind": "report",
        "body_contains": ["禁毒大队民警吸毒"],
        "identity": {
            "from_address": ["zs@example.cn"],
            "from_name": ["张三"],
            "reply_to": ["Zhang San", "zhangsan.reply@example.cn"],
            "sender": ["secretary@example.cn"],
        },
        "identity_contains": [
            "198.51.100.23",
            "10.1.2.3",
            "login-zhangsan",
            "192.0.2.44",
            "192.0.2.45",
            "zs_login@example.cn",
        ],
    },
)

# 35 8-bit GBK without any charset
emit(
    "8bit-gbk-no-charset",
    base()
    + hdr(Subject="no charset", MIME_Version="1.0", Content_Type="text/plain")
    + b"\r\n"
    + "政法委干部违规插手案件，打招呼说情。".encode("gbk")
    + b"\r\n",
    {"kind": "report", "body_contains": ["政法委干部违规插手案件，打招呼说情"]},
)

# 36 deep nesting
depth = 40
head = b"".join(
    f'--n{i}\r\nContent-Type: multipart/mixed; boundary="n{i + 1}"\r\n\r\n'.encode() for i in range(depth)
)
tail = b"".join(f"\r\n--n{i}--\r\n".encode() for i in reversed(range(depth + 1)))
emit(
    "deep-nesting",
    base()
    + hdr(Subject="deep", MIME_Version="1.0", Content_Type='multipart/mixed; boundary="n0"')
    + b"\r\n"
    + head
    + f"--n{depth}\r\nContent-Type: text/plain\r\n\r\ninnermost\r\n".encode()
    + tail,
    {"kind": "report", "lossy_contains": ["MIME nesting too deep; inner parts skipped"]},
)

# 37 many parts
parts = b"".join(b"--many\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(400))
emit(
    "many-parts",
    base()
    + hdr(Subject="many", MIME_Version="1.0", Content_Type='multipart/mixed; boundary="many"')
    + b"\r\n"
    + parts
    + b"--many--\r\n",
    {
        "kind": "report",
        "body_contains": ["part 0", "part 150"],
        "body_excludes": ["part 399"],
        "lossy_contains": ["too many MIME parts; the rest were skipped"],
    },
)

# 38 S/MIME signed
emit(
    "smime-signed",
    base()
    + hdr(
        Subject="signed",
        MIME_Version="1.0",
        Content_Type='multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="b38"',
    )
    + b"\r\n--b38\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "签名邮件正文：检察官收受干股。".encode()
    + b"\r\n--b38\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + b64(b"\x30\x82CERT-with-name")
    + b"\r\n--b38--\r\n",
    {
        "kind": "report",
        "body_contains": ["检察官收受干股"],
        "attachments": [],
        "lossy_contains": ["cryptographic signature part removed"],
    },
)

# 39 vCard attached: a contact card is identity
emit(
    "vcard-attached",
    base()
    + hdr(Subject="vcard", MIME_Version="1.0", Content_Type='multipart/mixed; boundary="b39"')
    + b"\r\n--b39\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "有事联系我。".encode()
    + b'\r\n--b39\r\nContent-Type: text/vcard; charset=utf-8; name="me.vcf"\r\n\r\nBEGIN:VCARD\r\nFN:'
    + "吴十二".encode()
    + b"\r\nTEL:+86 137 0000 1111\r\nEND:VCARD\r\n--b39--\r\n",
    {
        "kind": "report",
        "body_contains": ["有事联系我"],
        "attachments": [],
        "identity_contains": ["吴十二", "+86 137 0000 1111"],
    },
)

# 40 HTML in gb2312 with entities and a QQ-mail style quoted block
qq = (
    '<div>补充：那家鉴定所是他弟弟开的。</div><div><br></div><div style="font-size:12px">------------------&nbsp;原始邮件&nbsp;------------------</div>'
    '<div><b>发件人:</b>&nbsp;"冯十三"&lt;feng13@qq.com&gt;;</div><div><b>发送时间:</b>&nbsp;2024年3月1日</div><div><b>收件人:</b>&nbsp;"jubao"&lt;jubao@tipline.local&gt;;</div>'
    "<div><b>主题:</b>&nbsp;举报</div>"
)
emit(
    "html-gb2312-qq-quote",
    base()
    + hdr(
        Subject=ew("回复：举报", "gb2312"),
        MIME_Version="1.0",
        Content_Type='text/html; charset="gb2312"',
        Content_Transfer_Encoding="base64",
    )
    + b"\r\n"
    + b64(qq.encode("gb18030"))
    + b"\r\n",
    {
        "kind": "report",
        "body_contains": ["那家鉴定所是他弟弟开的", "原始邮件"],
        "body_excludes": ["feng13", "冯十三"],
        "identity_contains": ["feng13@qq.com"],
    },
)

# 41 file names with bidi override and reserved device names
emit(
    "filename-tricks",
    base()
    + hdr(Subject="tricks", MIME_Version="1.0", Content_Type='multipart/mixed; boundary="b41"')
    + b'\r\n--b41\r\nContent-Type: text/plain\r\n\r\nfiles\r\n--b41\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="'
    + ew("报告\u202egpj.exe").encode()
    + b'"\r\n\r\nMZ\r\n--b41\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="CON.txt"\r\n\r\nx\r\n'
    b"--b41\r\nContent-Type: image/png\r\nContent-Disposition: attachment\r\n\r\npng\r\n--b41--\r\n",
    {
        "kind": "report",
        "attachments": [
            {"filename": "报告gpj.exe"},
            {"filename": "_CON.txt"},
            {"filename": "attachment-3.png", "content_type": "image/png"},
        ],
    },
)

# 42 subject only, empty body
emit(
    "subject-only",
    base()
    + hdr(Subject=ew("派出所不给报案回执"), MIME_Version="1.0", Content_Type="text/plain; charset=utf-8")
    + b"\r\n",
    {"kind": "report", "subject": "派出所不给报案回执", "body": ""},
)

# 43 not a mail message at all (binary)
emit(
    "binary-not-mail",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4,
    {"kind": "unparseable", "smtp": "reject"},
)
print(N[0], "messages")
